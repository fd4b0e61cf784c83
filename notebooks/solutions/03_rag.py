"""Solutions to notebook 03's exercises (run by tests/test_exercises.py)."""

import exercises
import workshop
from contoso_chat import records
from contoso_chat.assistant import ContosoChat


def exercise_1() -> bool:
    """The app's replies with 2 and 6 facts in the prompt, on a few dev questions."""
    base = ContosoChat(settings=workshop.settings())
    cases = [c for c in records.qa_cases(split="dev") if c.category == "product-fact"][:5]
    replies = {}
    for max_facts in (2, 6):
        app = ContosoChat(settings=base.settings, retriever=base.retriever, customers=base.customers, chat=base.chat,
                          max_facts=max_facts)
        replies[max_facts] = [app(c.question, c.customer_id) for c in cases]
    return exercises.check("03-1", replies, cases)


def exercise_2() -> bool:
    """Ask about a product the store does not sell, and read the similarity the gate compared."""
    app = ContosoChat(settings=workshop.settings())
    question = "How much does the Summit Dome 4 Tent cost?"
    return exercises.check("03-2", question, app(question, "C1002"), app.decline_below)
