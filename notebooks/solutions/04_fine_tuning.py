"""Solutions to notebook 04's exercises (run by tests/test_exercises.py)."""

import exercises
import workshop
from contoso_chat import records
from contoso_chat.assistant import ContosoChat
from contoso_chat.evaluation import metrics
from contoso_chat.finetuning import training_data


def exercise_1() -> bool:
    """Another seed, another mix of examples: still no test product in any of them."""
    app = ContosoChat(settings=workshop.settings())
    examples = training_data.make_examples(app, 12, seed=1)
    names = [records.product_by_id(p).name for p in training_data.test_products()]
    return exercises.check("04-1", examples, names)


def exercise_2() -> bool:
    """One test question, with and without the facts (the base model stands in when no fine-tuned one exists)."""
    app = ContosoChat(settings=workshop.settings())
    plain = ContosoChat(settings=app.settings, retriever=app.retriever, customers=app.customers, chat=app.chat,
                        use_retrieval=False)
    for case in [c for c in records.qa_cases(split="test") if c.category == "product-fact"][:8]:
        with_rag, without_rag = app(case.question, case.customer_id)["answer"], \
            plain(case.question, case.customer_id)["answer"]
        if metrics.keyfact_score(with_rag, case.key_facts) > 0:  # a question where the facts made the difference
            break
    return exercises.check("04-2", with_rag, without_rag, case.key_facts)
