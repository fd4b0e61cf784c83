"""Schema and consistency checks for the Contoso Outdoors data set."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest

from contoso_chat import prompts, records
from contoso_chat.evaluation.metrics import fact_found
from contoso_chat.paths import data_dir

MANUAL_SECTIONS = [
    "Overview", "Features", "Technical specifications", "Setup and use", "Care and maintenance",
    "Cautions", "Warranty", "Returns", "FAQ", "Customer reviews",
]
POLICIES = {"shipping", "returns", "warranty", "membership", "privacy"}
QA_CATEGORIES = {"product-fact", "comparison", "order-history", "policy", "multi-turn", "out-of-scope"}
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


def test_qa_set_is_complete_and_points_at_real_sources():
    cases = records.qa_cases()
    assert len(cases) >= 40
    assert len({c.id for c in cases}) == len(cases), "qa ids must be unique"
    counts = Counter(c.category for c in cases)
    assert set(counts) == QA_CATEGORIES
    assert min(counts.values()) >= 5, counts
    known_sources = records.source_ids()
    known_customers = {c.id for c in records.customers()}
    for case in cases:
        assert case.customer_id in known_customers, f"qa.jsonl {case.id}: unknown customer {case.customer_id}"
        unknown = set(case.expected_sources) - known_sources
        assert not unknown, f"qa.jsonl {case.id}: expected_sources {sorted(unknown)} do not exist"
        if case.category == "multi-turn":
            assert case.chat_history, f"qa.jsonl {case.id}: multi-turn case without chat_history"
        if case.category == "out-of-scope":
            assert not case.key_facts and not case.expected_sources
        else:
            assert case.key_facts, f"qa.jsonl {case.id}: answerable case without key_facts"


def test_key_facts_appear_in_their_sources():
    manuals = records.manual_paths()
    policies = records.policy_paths()
    customers = {c.id: c for c in records.customers()}
    for case in records.qa_cases():
        texts = []
        for source in case.expected_sources:
            if source.startswith("product-"):
                product = records.product_by_id(int(source.split("-")[1]))
                texts += [manuals[product.id].read_text(encoding="utf-8"), product.model_dump_json()]
            else:
                texts.append(policies[source].read_text(encoding="utf-8"))
        if case.category == "order-history":
            customer = customers[case.customer_id]
            texts.append(customer.model_dump_json())
            texts += [f"{o.date}: {o.quantity} x {records.product_by_id(o.product_id).name}, total ${o.total:.2f}"
                      for o in customer.orders]
        corpus = "\n".join(texts)
        for fact in case.key_facts:
            assert fact_found(fact, corpus), f"qa.jsonl {case.id}: key fact {fact!r} not found in {case.expected_sources}"


def test_no_key_fact_is_given_away_by_the_prompt_itself():
    """A key fact the prompt always shows (the rules, the customer's name and tier) would score without an answer."""
    prompty = prompts.load()
    for case in records.qa_cases():
        customer = records.customers()[[c.id for c in records.customers()].index(case.customer_id)]
        fixed = prompts.render(prompty, question="", history=[], documentation=[],
                               customer={"first_name": customer.first_name, "membership": customer.membership,
                                         "orders": []})
        text = "\n".join(m["content"] for m in fixed)
        for fact in case.key_facts:
            assert not fact_found(fact, text), f"qa.jsonl {case.id}: key fact {fact!r} is in every prompt"


def test_the_dev_and_test_splits_share_no_product_and_each_covers_every_category():
    dev, test = records.qa_cases(split="dev"), records.qa_cases(split="test")
    assert len(dev) + len(test) == len(records.qa_cases())
    dev_products = set().union(*(c.products for c in dev))
    test_products = set().union(*(c.products for c in test))
    assert not dev_products & test_products, f"products on both sides: {sorted(dev_products & test_products)}"
    for side in (dev, test):
        counts = Counter(c.category for c in side)
        assert set(counts) == QA_CATEGORIES and min(counts.values()) >= 4, counts
        assert len(side) >= 30


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
