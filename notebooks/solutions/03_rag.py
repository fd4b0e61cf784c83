"""Solutions to notebook 03's exercises (run by tests/test_exercises.py)."""

import exercises
import workshop
from contoso_chat import records
from contoso_chat.assistant import ContosoChat
from contoso_chat.evaluation import metrics


def exercise_1() -> bool:
    """Key-fact accuracy with 2 and 6 facts in the prompt, on a few dev questions."""
    base = ContosoChat(settings=workshop.settings())
    cases = [c for c in records.qa_cases(split="dev") if c.category == "product-fact"][:5]
    results = {}
    for max_facts in (2, 6):
        app = ContosoChat(settings=base.settings, retriever=base.retriever, customers=base.customers, chat=base.chat,
                          max_facts=max_facts)
        results[max_facts] = sum(metrics.keyfact_score(app(c.question, c.customer_id)["answer"], c.key_facts)
                                 for c in cases) / len(cases)
    return exercises.check("03-1", results)


def exercise_2() -> bool:
    """Ask about a product the store does not sell, and read the similarity the gate compared."""
    app = ContosoChat(settings=workshop.settings())
    return exercises.check("03-2", app("How much does the Summit Dome 4 Tent cost?", "C1002"), app.decline_below)
