"""Schema and consistency checks for the Contoso Outdoors data set."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest

from contoso_chat import prompts, records
from contoso_chat.evaluation.metrics import fact_found, keyfact_score, unsupported_claims
from contoso_chat.paths import data_dir

MANUAL_SECTIONS = [
    "Overview", "Features", "Technical specifications", "Setup and use", "Care and maintenance",
    "Cautions", "Warranty", "Returns", "FAQ", "Customer reviews",
]
POLICIES = {"shipping", "returns", "warranty", "membership", "privacy"}
QA_CATEGORIES = {"product-fact", "comparison", "multi-part", "order-history", "policy", "multi-turn", "out-of-scope"}
TEMPLATED_CATEGORIES = QA_CATEGORIES - {"multi-part"}
COLLECTIONS = ("customers", "templated", "audit")
ADVERSARIAL = {
    "prompt-injection", "system-prompt-extraction", "cross-customer", "history-injection",
    "harmful-off-topic", "action-request",
}


def _all_text_files() -> dict[Path, str]:
    root = data_dir()
    return {p: p.read_text(encoding="utf-8") for p in root.rglob("*") if p.suffix in {".md", ".csv", ".json", ".jsonl"}}


def test_catalog_has_enough_products_and_categories():
    products = records.products()
    assert len(products) >= 20
    assert len({p.category for p in products}) >= 7
    assert len({p.id for p in products}) == len(products), "product ids must be unique"
    assert len({p.name for p in products}) == len(products), "product names must be unique"


def test_every_product_has_one_manual_consistent_with_the_catalog():
    manuals = records.manual_paths()
    for product in records.products():
        assert product.id in manuals, f"no manual for product {product.id} ({product.name})"
        path = manuals[product.id]
        text = path.read_text(encoding="utf-8")
        size = len(text.encode("utf-8"))
        assert 4000 <= size <= 12000, f"{path.name}: {size} bytes, expected 4-12 KB"
        assert text.splitlines()[0] == f"# {product.name}", f"{path.name}: first line must be '# {product.name}'"
        assert f"${product.price:.2f}" in text, f"{path.name}: price ${product.price:.2f} missing"
        headings = re.findall(r"^## (.+)$", text, re.M)
        assert headings == MANUAL_SECTIONS, f"{path.name}: sections {headings}"
    assert set(manuals) == {p.id for p in records.products()}, "a manual has no catalog row"


def test_policies_exist():
    assert {p.removeprefix("policy-") for p in records.policy_paths()} >= POLICIES


def test_customer_orders_match_the_catalog():
    customers = records.customers()
    assert len(customers) >= 12
    assert len({c.id for c in customers}) == len(customers)
    assert {c.membership for c in customers} == {"Base", "Gold", "Platinum"}
    order_ids = Counter()
    for customer in customers:
        assert customer.orders, f"{customer.id}.json: no orders"
        for line in customer.orders:
            product = records.product_by_id(line.product_id)
            where = f"{customer.id}.json order {line.order_id}"
            assert line.unit_price == product.price, f"{where}: unit_price {line.unit_price} != catalog {product.price}"
            assert abs(line.total - line.unit_price * line.quantity) < 0.005, f"{where}: total != unit_price x quantity"
            order_ids[line.order_id] += 1
    assert max(order_ids.values()) == 1, "order ids must be unique across customers"


def test_each_customer_detail_is_unique_to_that_customer():
    files = _all_text_files()
    for customer in records.customers():
        own = data_dir() / "customers" / f"{customer.id}.json"
        for detail in (customer.unique_detail, customer.email, customer.phone):
            others = [p.name for p, text in files.items()
                      if p != own and p.parent.name != "eval" and detail.lower() in text.lower()]
            assert not others, f"{customer.id}: '{detail}' also appears in {others}"


def _all_cases() -> list[records.QACase]:
    return [c for collection in COLLECTIONS for c in records.qa_cases(collection=collection)]


def test_qa_sets_are_complete_and_point_at_real_sources():
    cases = _all_cases()
    assert len({c.id for c in cases}) == len(cases), "qa ids must be unique across the three sets"
    known_sources = records.source_ids()
    known_customers = {c.id for c in records.customers()}
    for case in cases:
        assert case.customer_id in known_customers, f"{case.id}: unknown customer {case.customer_id}"
        unknown = set(case.expected_sources) - known_sources
        assert not unknown, f"{case.id}: expected_sources {sorted(unknown)} do not exist"
        assert bool(case.chat_history) == (case.category == "multi-turn"), f"{case.id}: chat_history iff multi-turn"
        if case.category == "out-of-scope":
            assert not case.key_facts and not case.expected_sources, case.id
        else:
            assert case.key_facts, f"{case.id}: answerable case without key_facts"
    templated = records.qa_cases(collection="templated")
    assert {c.phrasing for c in templated} == {"templated"} and set(Counter(c.category for c in templated)) == \
        TEMPLATED_CATEGORIES


def _source_text(case: records.QACase) -> list[str]:
    manuals, policies = records.manual_paths(), records.policy_paths()
    texts = []
    for source in case.expected_sources:
        if source.startswith("product-"):
            product = records.product_by_id(int(source.split("-")[1]))
            texts.append(manuals[product.id].read_text(encoding="utf-8") + "\n" + product.model_dump_json())
        else:
            texts.append(policies[source].read_text(encoding="utf-8"))
    return texts


def _order_text(customer: records.Customer) -> str:
    return "\n".join([customer.model_dump_json()] + [
        f"{o.date}: {o.quantity} x {records.product_by_id(o.product_id).name}, total ${o.total:.2f}"
        for o in customer.orders])


def test_key_facts_appear_in_their_sources_and_reference_answers_state_them():
    customers = {c.id: c for c in records.customers()}
    for case in _all_cases():
        texts = _source_text(case)
        if case.category == "order-history":
            texts.append(_order_text(customers[case.customer_id]))
        corpus = "\n".join(texts)
        for fact in case.key_facts:
            assert fact_found(fact, corpus), f"{case.id}: key fact {fact!r} not found in {case.expected_sources}"
        if case.category == "comparison":
            assert len(case.key_facts) == len(texts), f"{case.id}: one key fact per compared product"
            for fact, text in zip(case.key_facts, texts):
                assert fact_found(fact, text), f"{case.id}: key fact {fact!r} is not in its own product's source"
        if case.key_facts:
            products = [records.product_by_id(p).name for p in sorted(case.products)] if case.category == \
                "comparison" else None
            ordered = [records.product_by_id(int(s.split("-")[1])).name for s in case.expected_sources] if products \
                else None
            assert keyfact_score(case.reference_answer, case.key_facts, ordered) == 1.0, \
                f"{case.id}: the reference answer does not state every key fact"
            assert not unsupported_claims(case.reference_answer, [corpus, case.question]), \
                f"{case.id}: the reference answer states a figure found in no source"


def test_no_key_fact_is_given_away_by_the_prompt_itself():
    """A key fact the prompt always shows (the rules, the customer's name and tier) would score without an answer."""
    prompty = prompts.load()
    customers = {c.id: c for c in records.customers()}
    for case in _all_cases():
        customer = customers[case.customer_id]
        fixed = prompts.render(prompty, question="", history=[], documentation=[],
                               customer={"first_name": customer.first_name, "membership": customer.membership,
                                         "orders": []})
        text = "\n".join(m["content"] for m in fixed)
        for fact in case.key_facts:
            assert not fact_found(fact, text), f"{case.id}: key fact {fact!r} is in every prompt"


def test_the_customers_set_is_large_split_by_product_and_covers_every_category():
    dev, test = records.qa_cases(split="dev"), records.qa_cases(split="test")
    assert len(dev) + len(test) == len(records.qa_cases()), "the customers' set has dev and test cases only"
    assert len(test) >= 200, "about 200 test cases keep a key-fact interval near +-0.07"
    assert len(dev) >= 150
    dev_products = set().union(*(c.products for c in dev))
    test_products = set().union(*(c.products for c in test))
    assert not dev_products & test_products, f"products on both sides: {sorted(dev_products & test_products)}"
    assert dev_products | test_products == {p.id for p in records.products()}, "every product is asked about"
    for side in (dev, test):
        counts = Counter(c.category for c in side)
        assert set(counts) == QA_CATEGORIES and min(counts.values()) >= 6, counts
    customers = {c.id: c for c in records.customers()}
    for case in dev + test:  # order questions ask about products of their own side too
        if case.category == "order-history":
            side = test_products if case.split == "test" else dev_products
            owned = {o.product_id for o in customers[case.customer_id].orders}
            assert owned & side, f"{case.id}: the customer owns no product of the {case.split} split"


def test_paraphrase_families_ask_one_need_three_ways():
    for collection in ("customers", "audit"):
        families: dict[str, list[records.QACase]] = {}
        for case in records.qa_cases(collection=collection):
            families.setdefault(case.family, []).append(case)
        for family, members in families.items():
            assert len(members) in (1, 3), f"family {family}: {len(members)} cases (1 or 3)"
            first = members[0]
            for other in members[1:]:
                for field in ("key_facts", "expected_sources", "category", "topic", "split"):
                    assert getattr(other, field) == getattr(first, field), f"family {family}: {field} differs"
            if len(members) == 3:
                assert sorted(c.phrasing for c in members) == ["catalog", "customer", "situation"], family
                assert len({c.question.lower() for c in members}) == 3, f"family {family}: a question repeats"


def test_every_product_is_asked_about_in_customers_words_beyond_its_spec_table():
    cases = records.qa_cases()
    for product in records.products():
        about = [c for c in cases if c.products == {product.id} and c.category == "product-fact"]
        families = {c.family for c in about}
        topics = {c.topic for c in about}
        assert len(families) >= 3, f"product {product.id}: {len(families)} paraphrase families"
        assert "care" in topics and topics & {"setup", "troubleshooting", "included"}, (product.id, topics)
    phrasings = Counter(c.phrasing for c in cases)
    assert phrasings["customer"] >= 100 and phrasings["situation"] >= 100, phrasings


def test_order_questions_in_customers_words_describe_the_product_instead_of_naming_it():
    names = [p.name.lower() for p in records.products()]
    described = [c for c in records.qa_cases() if c.category == "order-history" and c.phrasing == "customer"]
    assert len(described) >= 8
    for case in described:
        assert not any(name in case.question.lower() for name in names), f"{case.id} names the product"


def test_the_audit_set_is_small_fresh_and_about_test_products():
    audit = records.qa_cases(split="audit")
    assert 24 <= len(audit) <= 80, len(audit)
    assert {c.split for c in audit} == {"audit"}
    assert "audit" not in {c.split for c in records.qa_cases()}, "the audit set is read only when asked for"
    test_products = set().union(*(c.products for c in records.qa_cases(split="test")))
    assert set().union(*(c.products for c in audit)) <= test_products, "audit questions are about test products"
    assert not {c.question.lower() for c in audit} & {c.question.lower() for c in _all_cases() if c.split != "audit"}


def test_redteam_set_covers_every_attack_and_benign_look_alikes():
    cases = records.redteam_cases()
    assert len({c.id for c in cases}) == len(cases), "red-team ids must be unique"
    counts = Counter(c.category for c in cases)
    assert sum(counts[c] for c in ADVERSARIAL) >= 60, counts
    assert all(counts[c] >= 5 for c in ADVERSARIAL), counts
    assert counts["benign"] >= 25, counts
    known_customers = {c.id for c in records.customers()}
    for case in cases:
        assert case.customer_id in known_customers, f"redteam.jsonl {case.id}: unknown customer"
        if case.category == "benign":
            assert case.expected_outcome == "answer" and not case.must_not_contain, case.id
        else:
            assert case.must_not_contain, f"redteam.jsonl {case.id}: empty must_not_contain"
        if case.expected_outcome == "answer" and case.key_facts:
            assert all(f.strip() for f in case.key_facts), case.id


def test_cross_customer_attacks_only_guard_other_customers_data():
    customers = {c.id: c for c in records.customers()}
    for case in records.redteam_cases():
        if case.category != "cross-customer":
            continue
        own = customers[case.customer_id]
        for needle in case.must_not_contain:
            assert needle.lower() not in {own.unique_detail.lower(), own.email.lower()}, (
                f"redteam.jsonl {case.id}: must_not_contain lists the signed-in customer's own detail {needle!r}"
            )


def test_poisoned_documents_exist_and_are_not_in_the_corpus():
    poisoned = sorted((data_dir() / "eval" / "poisoned").glob("*.md"))
    assert len(poisoned) >= 10
    assert all(p.read_text(encoding="utf-8").startswith("<!-- poisoned:") for p in poisoned)
    tag_chars = [p for p in poisoned if any(0xE0000 <= ord(ch) <= 0xE007F for ch in p.read_text(encoding="utf-8"))]
    assert tag_chars, "one poisoned document must hide text in Unicode tag characters"


def test_pricing_covers_the_local_model_at_zero_cost():
    rows = {p.model: p for p in records.prices()}
    assert rows["smollm2-135m-instruct"].input_per_1k == 0 and rows["smollm2-135m-instruct"].output_per_1k == 0
    assert {"gpt-4o", "gpt-4o-mini"} <= set(rows)
    assert all(p.price_date and p.source for p in rows.values())


def test_a_broken_file_names_file_line_and_field(tmp_path):
    good = (data_dir() / "eval" / "qa.jsonl").read_text(encoding="utf-8").splitlines()
    broken = json.loads(good[1])
    broken["category"] = "gossip"
    path = tmp_path / "qa.jsonl"
    path.write_text("\n".join([good[0], json.dumps(broken)]) + "\n", encoding="utf-8")
    with pytest.raises(records.DataError, match=r"qa\.jsonl line 2: field category"):
        records.read_jsonl(path, records.QACase)
    path.write_text(good[0] + "\n{not json\n", encoding="utf-8")
    with pytest.raises(records.DataError, match=r"qa\.jsonl line 2: not valid JSON"):
        records.read_jsonl(path, records.QACase)


def test_costs_from_an_old_price_list_come_with_a_warning_and_fresh_ones_do_not():
    import datetime as dt

    rows = records.prices()
    oldest, _ = records.price_list_age(rows)
    assert records.price_warning(rows, today=oldest + dt.timedelta(days=150)) is None, "five months: still current"
    assert records.price_list_age(rows, today=oldest.replace(year=oldest.year + 1))[1] == 12
    late = records.price_warning(rows, today=oldest.replace(year=oldest.year + 1))
    assert late and oldest.isoformat() in late and "12 months" in late and "pricing page" in late
    one_new_row = [row.model_copy(update={"price_date": "2099-01-01"}) for row in rows[:1]] + rows[1:]
    assert records.price_list_age(one_new_row)[0] == oldest, "the oldest row decides"
