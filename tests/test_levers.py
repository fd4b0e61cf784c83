"""Quality levers: the catalogue checks, order matching, fact filtering, reply trimming, and the keep rule."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from contoso_chat import catalog, prompts, records
from contoso_chat.assistant import (
    NOT_CARRIED_ANSWER, ContosoChat, complete_sentences, is_fact_line, matching_order_lines, order_lines,
)
from contoso_chat.backends.settings import resolve
from contoso_chat.evaluation import levers


def names(products) -> list[str]:
    return [p.name for p in products]


@pytest.mark.parametrize("question, expected", [
    ("granite peak boots vs alpine ascent boots, what does a pair of each weigh?",
     ["Granite Peak Waterproof Hiking Boots", "Alpine Ascent Mountaineering Boots"]),
    ("I'm torn between the Ridgeway 45L and the Expedition 70L.", ["Ridgeway 45L Trekking Pack", "Expedition 70L Pack"]),
    ("the Rollaway aluminium table or the Pocket Ultralight table?",
     ["Rollaway Aluminum Camp Table", "Pocket Ultralight Table"]),
    ("which copes better with getting wet, the beacon 400 headlamp or the glowpath lantern?",
     ["Beacon 400 Headlamp", "Glowpath Rechargeable Lantern"]),
    ("does my jacket have a chest pocket?", []),  # "pocket" alone is an ordinary word
    ("how do I reach the summit in bad weather?", []),
])
def test_products_are_named_by_their_model_word_and_one_more(question, expected):
    assert names(catalog.named_products(question)) == expected


@pytest.mark.parametrize("question, expected", [
    ("What is the beam distance of the Beacon 600 Headlamp?", ["beacon 600"]),
    ("do you have a ridgeway 60? the 45 is a little small for me", ["ridgeway 60"]),
    ("Is there a Summit Dome 3 Tent?", ["summit 3"]),
    ("How long does the Beacon 400 last on high?", []),
    ("Is the Meadow 40 warm enough at 5 degrees?", []),
    ("What is the packed weight of the Ridgeway 45L?", []),
])
def test_look_alike_model_names_are_found_and_real_ones_are_not(question, expected):
    assert catalog.lookalike_names(question) == expected


@pytest.mark.parametrize("question, expected", [
    ("you guys sell kayaks? looking for a cheap blow-up one", ["kayak"]),
    ("What camping hammocks are available from Contoso Outdoors?", ["hammock"]),
    ("Which surfboards does Contoso Outdoors sell?", ["surfboard"]),
    ("Do you sell a hammock setup for that?", ["hammock"]),
    ("Do you sell tents?", []),  # the store sells tents
    ("What waist sizes and inseam lengths are available for the Trailflex Convertible Pants?", []),
    ("How do I stop my kayak paddle from slipping?", []),  # not asking the store to sell one
])
def test_product_types_the_store_never_mentions_are_not_carried(question, expected):
    assert catalog.unknown_product_types(question) == expected


def test_no_answerable_question_of_the_dev_split_counts_as_not_carried():
    flagged = [c for c in records.qa_cases(split="dev") if catalog.not_carried(c.question)]
    assert flagged and all(c.category == "out-of-scope" for c in flagged), [c.question for c in flagged]


def customer_with(product_name: str) -> records.Customer:
    return next(c for c in records.customers()
                if any(records.product_by_id(o.product_id).name == product_name for o in c.orders) and len(c.orders) > 2)


def test_order_lines_for_the_product_asked_about_carry_their_ids():
    customer = customer_with("Beacon 400 Headlamp")
    lines = matching_order_lines(customer, "whats the order number for the headlamps i got?")
    headlamp = [o for o in customer.orders if records.product_by_id(o.product_id).name == "Beacon 400 Headlamp"]
    assert [line["order_id"] for line in lines] == [o.order_id for o in headlamp]
    assert len(lines) < len(customer.orders), "only the lines the question is about"
    everything = matching_order_lines(customer, "what did I order last?")
    assert len(everything) == len(customer.orders), "no match: every order line, so nothing is hidden"


def test_the_shipped_prompt_shows_orders_without_ids_and_the_lever_with_them():
    customer = customer_with("Beacon 400 Headlamp")
    prompty = prompts.load()

    def system(orders):
        return prompts.render(prompty, question="q", documentation=[],
                              customer={"first_name": "A", "membership": "Gold", "orders": orders})[0]["content"]
    shipped = system([{k: v for k, v in line.items() if k != "order_id"} for line in order_lines(customer)])
    lever = system(matching_order_lines(customer, "the headlamps I got?"))
    assert "ORD-" not in shipped and shipped.count("\n- ") == len(customer.orders)
    headlamp = next(o for o in customer.orders if records.product_by_id(o.product_id).name == "Beacon 400 Headlamp")
    assert f"- order {headlamp.order_id}, {headlamp.date}: {headlamp.quantity} x Beacon 400 Headlamp" in lever


@pytest.mark.parametrize("line, is_fact", [
    ("How much does the Pocket Ultralight Table weigh?", False),
    ("What customers say about the Beacon 400 Headlamp:", False),
    ("The Beacon 400 Headlamp specifications are listed below.", False),
    ("Pocket Ultralight Table weight: 580 g (20.5 oz)", True),
    ("Beacon 400 Headlamp: Top it up every three months.", True),
])
def test_questions_and_headings_are_not_facts(line, is_fact):
    assert is_fact_line(line) is is_fact


@pytest.mark.parametrize("reply, trimmed", [
    ("It weighs 580 g [product-17]. It also holds 20 kg and", "It weighs 580 g [product-17]."),
    ("It weighs 580 g. Then 1.5 kg", "It weighs 580 g."),
    ("It weighs 580 g! And", "It weighs 580 g!"),
    ("It weighs 5.8 kg and", "It weighs 5.8 kg and"),  # no sentence ends: nothing to cut back to
])
def test_a_cut_off_reply_ends_on_its_last_full_sentence(reply, trimmed):
    assert complete_sentences(reply) == trimmed


class CountingChat:
    """A chat client that replies with fixed text and counts its calls (the reply is not the point here)."""

    def __init__(self, text: str, finish_reason: str = "stop") -> None:
        self.text, self.finish_reason, self.sent = text, finish_reason, []
        self.chat = self
        self.completions = self

    def create(self, **kwargs):
        self.sent.append(kwargs)
        message = type("Message", (), {"content": self.text})()
        choice = type("Choice", (), {"message": message, "finish_reason": self.finish_reason})()
        usage = type("Usage", (), {"prompt_tokens": 100, "completion_tokens": 10, "total_tokens": 110})()
        return type("Completion", (), {"choices": [choice], "usage": usage})()


@pytest.fixture(scope="module")
def app() -> ContosoChat:
    return ContosoChat(settings=resolve({}))


def with_client(app, client, **settings) -> ContosoChat:
    target = type(app.chat)(client=client, model="counting", backend="local", host="counting")
    return ContosoChat(settings=app.settings, retriever=app.retriever, customers=app.customers, chat=target,
                       **settings)


def test_look_alike_products_are_declined_before_the_model_is_asked(app):
    client = CountingChat("The Beacon 600 throws its beam 120 m [product-22].")
    reply = with_client(app, client, catalog_check=True)("What is the beam distance of the Beacon 600 Headlamp?", "C1001")
    assert reply["answer"] == NOT_CARRIED_ANSWER and reply["usage"]["decline_reason"] == "not-carried"
    assert client.sent == []
    without = with_client(app, client, catalog_check=False)("What is the beam distance of the Beacon 600 Headlamp?",
                                                            "C1001")
    assert without["usage"]["decline_reason"] is None, "without the lever the model is asked"
    assert ContosoChat.__init__.__defaults__ is not None and levers.shipped_settings()["catalog_check"], \
        "the lever shipped: it is on by default"


def test_identical_prompts_reuse_the_reply_and_say_so(app):
    client, cache = CountingChat("It weighs 2.1 kg [product-1]."), {}
    first = with_client(app, client, answer_cache=cache)("How much does the Summit Dome 2 Tent weigh?", "C1001")
    second = with_client(app, client, answer_cache=cache)("How much does the Summit Dome 2 Tent weigh?", "C1001")
    other = with_client(app, client, answer_cache=cache, max_facts=2)("How much does the Summit Dome 2 Tent weigh?", "C1001")
    assert len(client.sent) == 2, "the same prompt and settings are asked once; fewer facts is a new prompt"
    assert (first["usage"]["cached"], second["usage"]["cached"], other["usage"]["cached"]) == (False, True, False)
    assert first["answer"] == second["answer"]


def test_concise_replies_stop_at_a_blank_line_and_drop_a_cut_sentence(app):
    client = CountingChat("It weighs 2.1 kg [product-1]. It also sleeps two people and", finish_reason="length")
    reply = with_client(app, client, concise=True)("How much does the Summit Dome 2 Tent weigh?", "C1001")
    assert reply["answer"] == "It weighs 2.1 kg." and client.sent[-1]["stop"] == ["\n\n"]
    whole = with_client(app, client)("How much does the Summit Dome 2 Tent weigh?", "C1001")
    assert whole["answer"].endswith("two people and"), "without the lever the cut reply is shown as it came"


def test_a_comparison_gets_facts_for_each_product_it_names(app):
    question = "granite peak boots vs alpine ascent boots, what does a pair of each weigh?"
    client = CountingChat("I don't know.")
    with_client(app, client, facts_per_product=True, max_facts=6)(question, "C1001")
    facts = client.sent[-1]["messages"][0]["content"].split("Facts:")[1]
    assert "[product-10]" in facts and "[product-12]" in facts
    assert facts.count("[product-10]") == facts.count("[product-12]") == 3


def frame(right: list[float], keyfact: list[float], family: list[str] | None = None) -> pd.DataFrame:
    n = len(right)
    return pd.DataFrame({
        "id": [f"c{i}" for i in range(n)], "family": family or [f"f{i}" for i in range(n)],
        "category": ["product-fact"] * n, "response": [str(r) for r in right],
        "keyfact.keyfact": keyfact, "unsupported.unsupported": [0.0 if r else 1.0 for r in right],
        "decline.refusal_correct": [1.0] * n, "usage.prompt_tokens": [100] * n, "usage.completion_tokens": [10] * n,
        "completion_tokens": [10] * n, "latency_s": [1.0] * n,
    })


def test_a_lever_that_adds_right_answers_is_kept_and_one_that_removes_them_is_not():
    base = frame([1, 0] * 20, [1, 0] * 20)
    better = frame([1, 1] * 20, [1, 1] * 20)
    worse = frame([0, 0] * 20, [0, 0] * 20)
    assert levers.keep(levers.compare(better, base))
    assert not levers.keep(levers.compare(worse, base))
    assert not levers.keep(levers.compare(base, base)), "no change is not an improvement"


def test_a_gain_within_noise_is_not_kept():
    base = frame([0] * 40, [0] * 40)
    one_more = frame([1] + [0] * 39, [1] + [0] * 39)  # one question of forty: a positive mean, an interval from 0
    difference = levers.compare(one_more, base)
    assert difference["right_answer_rate"]["mean"] > 0 and difference["right_answer_rate"]["low"] <= 0
    assert not levers.keep(difference)


def test_a_lever_that_costs_key_facts_is_not_kept_even_with_more_right_answers():
    base = frame([0] * 40, [1] * 40)
    tradeoff = frame([1] * 4 + [0] * 36, [1] * 4 + [0] * 36)
    difference = levers.compare(tradeoff, base)
    assert difference["right_answer_rate"]["mean"] > 0 and difference["keyfact_accuracy"]["high"] < 0
    assert not levers.keep(difference)
    assert not levers.does_not_hurt(difference)
    assert levers.does_not_hurt(levers.compare(base, base))


def test_paired_differences_resample_families_together():
    base = frame([0] * 30, [0] * 30, family=[f"f{i // 10}" for i in range(30)])
    lucky_family = frame([1] * 10 + [0] * 20, [1] * 10 + [0] * 20, family=[f"f{i // 10}" for i in range(30)])
    spread = frame([1, 0, 0] * 10, [1, 0, 0] * 10)
    assert levers.compare(lucky_family, base)["right_answer_rate"]["low"] == 0.0, \
        "one family's ten wins are one piece of evidence, not ten"
    assert levers.compare(spread, base)["right_answer_rate"]["low"] > 0


def guard_row(reply: str, customer_id: str = "C1001", reason: str | None = "output-guard") -> dict:
    return {"id": reply[:10], "customer_id": customer_id, "question": "q", "model_reply": reply,
            "usage": {"decline_reason": reason, "completion_tokens": 10, "guard": ["personal-record"]}}


def test_withheld_answers_with_nothing_wrong_count_as_guard_false_positives():
    other = next(c for c in records.customers() if c.id != "C1001")
    rows = pd.DataFrame([
        guard_row("The Summit Dome 2 Tent costs $249.00 [product-1]."),  # harmless, withheld: a false positive
        guard_row(f"Call {other.first_name} on {other.phone}."),  # another customer's phone: rightly withheld
        guard_row("It weighs 2.1 kg.", reason=None),  # answered
        guard_row("I don't know.", reason="model"),  # a model decline is not an answer the guard saw
    ])
    result = levers.guard_false_positives(rows)
    assert (result["answers"], result["withheld"], result["false_positives"]) == (3, 2, 1)
    assert result["cases"][0]["reply"].startswith("The Summit Dome")


def test_the_baseline_is_stored_only_for_the_levers_the_app_ships(tmp_path, monkeypatch):
    shipped = levers.shipped_settings()
    with pytest.raises(ValueError, match="defaults"):  # levers the app does not ship
        levers.store_baseline({"kept_settings": {"max_facts": shipped["max_facts"] + 1}, "test": {"ships": True},
                               "model": "m"}, tmp_path)
    shipped_levers = {k: v for k, v in shipped.items() if v != levers.BEFORE[k]}
    with pytest.raises(ValueError, match="worse"):
        levers.store_baseline({"kept_settings": shipped_levers, "test": {"ships": False}, "model": "m"}, tmp_path)
    stored = {}
    monkeypatch.setattr("contoso_chat.evaluation.run.save_baseline", lambda table, model: stored.update(
        rows=len(table), model=model) or tmp_path / "baseline.jsonl")
    for split in ("dev", "test"):
        (tmp_path / f"kept-{split}").mkdir()
        pd.DataFrame({"id": [f"{split}-1", f"{split}-2"]}).to_json(tmp_path / f"kept-{split}" / "rows.jsonl",
                                                                  orient="records", lines=True)
    levers.store_baseline({"kept_settings": shipped_levers, "test": {"ships": True}, "model": "m",
                           "kept_rows": {"dev": "kept-dev", "test": "kept-test"}}, tmp_path)
    assert stored == {"rows": 4, "model": "m"}


def test_examples_show_changed_answers_wins_first():
    base = frame([0, 1, 0, 1], [0, 1, 0, 1])
    lever = frame([1, 0, 0, 1], [1, 0, 0, 1])
    lever.loc[2, "response"] = "another wrong answer"  # changed, still wrong
    base["question"] = lever["question"] = [f"q{i}" for i in range(4)]
    shown = levers.examples(lever, base)
    assert [e["id"] for e in shown] == ["c0", "c1", "c2"], "a win, a loss, then a change; unchanged answers left out"
    assert [e["right_change"] for e in shown] == [1.0, -1.0, 0.0]


def test_a_full_run_confirms_on_fresh_answers_not_on_rows_left_on_disk(tmp_path):
    base, better = frame([0, 1] * 20, [0, 1] * 20), frame([1, 1] * 20, [1, 1] * 20)
    for name in ("before-dev", "before-test", "good-dev"):  # rows an earlier run left on disk
        (tmp_path / name).mkdir()
        base.to_json(tmp_path / name / "rows.jsonl", orient="records", lines=True)
    report = {"levers": [{"lever": "good", "settings": {"concise": True}, "dev": levers.compare(better, base)},
                         {"lever": "noise", "settings": {"max_facts": 3}, "dev": levers.compare(base, base)}]}
    asked = []

    def evaluate(name, assistant, split):
        asked.append(f"{name}-{split}")
        return better if name != "before" else base

    full = levers.confirm(json.loads(json.dumps(report)), tmp_path, evaluate=evaluate, variant=lambda s: None,
                          answered={"before-dev": base, "good-dev": better}, log=lambda *_: None)
    assert asked == ["before-test", "kept-test"], "a full run answers the test split afresh, never from old rows"
    assert full["kept_settings"] == {"concise": True} and full["test"]["ships"]
    assert [e["kept"] for e in full["levers"]] == [True, False]
    assert full["kept_rows"] == {"dev": "good-dev", "test": "kept-test"}
    assert json.loads((tmp_path / "levers.json").read_text())["rule"] == levers.KEEP_RULE


def test_the_fine_tuned_model_is_a_lever_kept_only_when_it_adds_right_answers_on_dev_and_holds_on_test(tmp_path):
    def write(variant: str, split: str, table: pd.DataFrame, model: str) -> None:
        folder = levers.model_run_dir(variant, split, tmp_path)
        folder.mkdir(parents=True)
        table.assign(question="q").to_json(folder / "rows.jsonl", orient="records", lines=True)
        (folder / "metrics.json").write_text(json.dumps({"model": model}))

    base, better, worse = frame([1, 0] * 20, [1, 0] * 20), frame([1, 1] * 20, [1, 1] * 20), frame([0] * 40, [0] * 40)
    with pytest.raises(FileNotFoundError, match="make model-lever"):
        levers.model_lever(tmp_path)
    for split in ("dev", "test"):
        write("base", split, base, "smollm2-135m-instruct")
    write("fine-tuned", "dev", better, "smollm2-135m-contoso")
    write("fine-tuned", "test", worse, "smollm2-135m-contoso")
    entry = levers.model_lever(tmp_path, run={"recipe": {"name": "full"}})
    assert entry["kept"] and not entry["test"]["ships"], "better on dev, worse on test: it does not ship"
    assert entry["models"] == {"base": "smollm2-135m-instruct", "fine-tuned": "smollm2-135m-contoso"}
    assert entry["recipe"] == {"name": "full"}
    report = {"levers": [], "model_lever": entry}
    assert list(levers.table(report)["lever"]) == ["fine-tuned-model"] and "on_fine_tuned" not in entry
    lever = levers.FINE_TUNED_LEVERS[0].name  # the same answers as the fine-tuned model on dev: not kept
    write(lever, "dev", better, "smollm2-135m-contoso")
    write(lever, "test", worse, "smollm2-135m-contoso")
    on_top = levers.model_lever(tmp_path)["on_fine_tuned"]
    assert [e["lever"] for e in on_top] == [lever] and not on_top[0]["kept"] and not on_top[0]["test"]["ships"]
    assert on_top[0]["dev_summary"]["latency_p50_s"] is None, "its answers are mostly reused: no latency of its own"
    assert list(levers.table({"levers": [], "model_lever": levers.model_lever(tmp_path)})["lever"]) == \
        ["fine-tuned-model", lever]


def test_model_runs_answer_the_levers_on_the_fine_tuned_model_with_its_answer_cache(monkeypatch, tmp_path):
    """`make model-lever` answers each lever on the fine-tuned model through the app with that lever on, sharing the
    shipped app's answer cache (only changed prompts are answered again); the base model gets no such lever."""
    from contoso_chat.evaluation import run

    seen = []

    def evaluate_variant(variant, split, limit=None, engine="direct", out_dir=None, assistant=None):
        seen.append((out_dir.name, assistant))
        return frame([1, 0], [1, 0]).assign(failed=False), {}

    monkeypatch.setattr(run, "evaluate_variant", evaluate_variant)
    with pytest.raises(ValueError, match="LOCAL_MODEL_VARIANT='large'"):
        levers.model_runs("large", tmp_path)
    levers.model_runs("fine-tuned", tmp_path, log=lambda *_: None)
    lever = levers.FINE_TUNED_LEVERS[0].name
    assert [name for name, _ in seen] == ["model-fine-tuned-dev", f"model-{lever}-dev",
                                          "model-fine-tuned-test", f"model-{lever}-test"]
    shipped, matched = seen[0][1], seen[1][1]
    assert matched.matched_orders and not shipped.matched_orders
    assert matched.answer_cache is shipped.answer_cache and matched.chat is shipped.chat
    seen.clear()
    levers.model_runs("base", tmp_path, log=lambda *_: None)
    assert [name for name, _ in seen] == ["model-base-dev", "model-base-test"]
