"""Fine-tuning data made by code: the app's own prompts, answers that copy a fact shown, no test product anywhere."""

from __future__ import annotations

import re

import pytest

from contoso_chat import records
from contoso_chat.assistant import ContosoChat, read_model_reply
from contoso_chat.backends.settings import resolve
from contoso_chat.evaluation import metrics
from contoso_chat.finetuning import training_data


@pytest.fixture(scope="module")
def examples():
    app = ContosoChat(settings=resolve({}))
    return training_data.make_examples(app, 40, seed=7)


def test_no_test_split_product_appears_in_any_example(examples):
    held_out = [records.product_by_id(p).name for p in training_data.test_products()]
    assert held_out
    for example in examples:
        text = " ".join(m["content"] for m in example.messages)
        assert not [name for name in held_out if name in text], example.kind


def test_the_leak_check_catches_a_test_product(examples):
    maker = training_data.ExampleMaker(ContosoChat(settings=resolve({})), training_data.test_products())
    poisoned = [{"role": "user", "content": "How heavy is the Summit Dome 2 Tent?"}]
    assert maker.leaks(poisoned) and not maker.leaks(examples[0].messages)


def test_answers_copy_a_fact_that_was_shown_and_cite_it(examples):
    kinds = {e.kind for e in examples}
    assert {"fact", "decline"} <= kinds
    for example in examples:
        assert example.messages[0]["role"] == "system" and example.messages[-1]["role"] == "assistant"
        shown = [m["content"] for m in example.messages[:-1]]
        sources = [line.split("]")[0].lstrip("[") for line in shown[0].splitlines() if line.startswith("[")]
        reply = read_model_reply(example.answer, sources, "inline")
        assert not reply.incomplete, f"a source mark where the figure should be: {example.answer}"
        if example.kind == "decline":
            assert reply.declined
        elif example.kind != "orders":
            assert reply.citations and reply.invalid_citations == 0, example.answer
            assert not metrics.unsupported_claims(reply.answer, shown), example.answer


def test_fact_answers_copy_the_line_shown_instead_of_repeating_the_question(examples):
    """An answer built around the question ("The warranty of the tent is ...") taught the model to put the source
    mark where a sentence answer should be; fact answers copy the fact line shown (or say "weighs" and the figure)."""
    made = [e for e in examples if e.kind in ("fact", "customer-fact", "follow-up", "two-facts")]
    assert len(made) >= 10
    for example in made:
        prompt = " ".join(m["content"] for m in example.messages[:-1])
        copied = [part.split(" [")[0] for part in example.answer.split("]. ") if part]
        assert all(line in prompt or " weighs " in line for line in copied), example.answer
        assert not re.search(r"\b[Tt]he [a-z ]+ (?:of|on|for) the [A-Z]", example.answer), example.answer


def test_the_same_seed_makes_the_same_data():
    app = ContosoChat(settings=resolve({}))
    first = training_data.make_examples(app, 6, seed=3)
    second = training_data.make_examples(app, 6, seed=3)
    assert [e.messages for e in first] == [e.messages for e in second]


def test_prices_and_the_membership_policy_are_taught_without_test_facts():
    app = ContosoChat(settings=resolve({}))
    made = training_data.make_examples(app, 80, seed=11)
    kinds = {e.kind for e in made}
    assert {"price", "policy"} <= kinds, kinds
    maker = training_data.ExampleMaker(app, training_data.test_products())
    for example in made:
        if example.kind == "policy":
            assert example.answer.endswith("[policy-membership]") and not maker.states_test_fact(example.answer)
    # the filter is not empty-handed: a test question's key fact is caught
    some_test_fact = next(f for c in records.qa_cases(split="test") for f in c.key_facts if f[0].isdigit())
    assert maker.states_test_fact(f"It is {some_test_fact.split(' | ')[0]}.")


def test_faq_pairs_are_read_from_the_manuals():
    pairs = training_data.faqs({12})
    assert len(pairs) >= 4 and all(p.product.id == 12 for p in pairs)
    crampons = next(p for p in pairs if p.question.startswith("Which crampons"))
    assert crampons.answer.startswith("Semi-automatic (B2) crampons") and not crampons.answer.startswith("**")
    assert not training_data.faqs(set())


def test_faq_answers_copy_the_manual_and_are_asked_in_customers_words():
    app = ContosoChat(settings=resolve({}))
    made = [e for e in training_data.make_examples(app, 60, seed=5) if e.kind == "faq"]
    assert made, "no FAQ example in 60"
    manual_answers = [p.answer for p in training_data.faqs(set(range(1, 100)))]
    manual_questions = {p.question for p in training_data.faqs(set(range(1, 100)))}
    for example in made:
        copied = example.answer.rsplit(" [", 1)[0]
        assert any(answer.startswith(copied.split(". ")[0]) for answer in manual_answers), example.answer
        question = example.messages[-2]["content"]
        assert question not in manual_questions and any(
            question.lower().startswith(s.lower()[:20]) for s in training_data.SITUATIONS), question


def test_a_question_without_the_product_name_gets_it():
    import random

    asked = training_data.in_customers_words("How warm are they?", "Alpine Ascent Mountaineering Boots",
                                             random.Random(1))
    assert "alpine ascent mountaineering boots" in asked.lower() and "how warm are they" in asked.lower()


def test_order_answers_copy_a_line_of_the_orders_shown():
    """Order examples come from made-up customers of dev products, so every shape of question can be taught; the
    answer's product, date and quantity or total are one line of the prompt's order list."""
    import random

    app = ContosoChat(settings=resolve({}))
    maker = training_data.ExampleMaker(app, training_data.test_products())
    rows = training_data.specs({p.id for p in records.products()} - training_data.test_products())
    rng, made = random.Random(11), []
    for _ in range(120):
        example = training_data._order_example(rng, rows, maker)
        if example and not maker.leaks(example.messages):
            made.append(example)
    questions = [e.messages[-2]["content"] for e in made]
    assert len(made) >= 60 and any(" warranty" in e.answer for e in made), "each shape of question is made"
    assert any("ORD-" in e.answer for e in made), "order-number questions are made where the prompt shows ids"
    assert any("order ORD-" not in e.messages[0]["content"] for e in made), "some prompts list orders without ids"
    assert any(training_data.customers_word(records.product_by_id(min(e.products))) + " " in q.lower() + " "
               and records.product_by_id(min(e.products)).name not in q for e, q in zip(made, questions)), \
        "some questions call the product by its kind, not its name"
    for example in made:
        prompt = example.messages[0]["content"]
        listed = [line for line in prompt.splitlines() if line.startswith("- ")]
        first = example.answer.split(". ")[0]
        date = re.search(r"\d{4}-\d{2}-\d{2}", first).group()
        product = records.product_by_id(min(example.products)).name
        assert any(date in line and product in line for line in listed), example.answer
        figure = re.search(r"(\$[\d.]+|\d+ x)", first)
        assert figure is None or any(figure.group() in line and product in line for line in listed), example.answer
        for order_id in re.findall(r"ORD-\d+", example.answer):
            assert any(order_id in line and product in line for line in listed), example.answer
