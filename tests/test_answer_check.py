"""The exported model's answers end where they should: the cut-off check, and the check run on the exported file."""

from __future__ import annotations

import pytest

from contoso_chat.assistant import DECLINE_ANSWER, ContosoChat
from contoso_chat.backends.local_model import finetuned_model_path
from contoso_chat.backends.settings import resolve
from contoso_chat.finetuning import answer_check


@pytest.fixture(scope="module")
def app():
    return ContosoChat(settings=resolve({}))


@pytest.fixture(scope="module")
def probes(app):
    return answer_check.probe_turns(app)


def _mark(messages) -> str:
    return next(line.split("]")[0].lstrip("[") for line in messages[0]["content"].splitlines() if line.startswith("["))


def test_probes_reach_the_model_with_facts_for_products_of_both_splits(probes):
    questions = [q for q, _, _ in probes]
    assert len(questions) == len(set(questions)) == answer_check.probes_count()
    assert all(turn["facts"] for _, turn, _ in probes), "a probe whose prompt shows no facts tests nothing"
    assert any("Summit Dome 2 Tent" in q for q in questions) and any("Meadow 40" in q for q in questions)


def test_a_mark_where_the_answer_should_be_is_counted_and_never_shown(app, probes):
    found = answer_check.cut_off_replies(lambda m: f"The washing instructions for it are [{_mark(m)}].", app, probes)
    assert found.count == found.probes == len(probes)
    assert not found.shown_cut, "the app must decline these replies, not show 'are.'"
    assert found.as_record()["replies"][0]["reply"].endswith("].")


def test_a_whole_answer_passes_and_a_cut_answer_without_a_mark_is_caught(app, probes):
    whole = answer_check.cut_off_replies(lambda m: f"Machine wash it on a gentle cycle at 30 °C [{_mark(m)}].", app,
                                         probes)
    assert whole.count == 0 and not whole.shown_cut
    # the app itself declines a reply that stops on "weighs." (counted as the habit, never shown) ...
    verb = answer_check.cut_off_replies(lambda m: "The Thermacore Fleece Pullover weighs.", app, probes)
    assert verb.count == len(probes) and not verb.shown_cut
    # ... and the check's own reading catches a cut answer the app lets through
    cut = answer_check.cut_off_replies(lambda m: "The Thermacore Fleece Pullover is covered for.", app, probes)
    assert cut.count == 0 and len(cut.shown_cut) == len(probes)
    assert cut.as_record()["shown"][0]["answer"] == "The Thermacore Fleece Pullover is covered for."
    declined = answer_check.cut_off_replies(lambda m: "I don't know.", app, probes)
    assert declined.count == 0 and not declined.shown_cut
    assert not answer_check.DANGLING_END.search(DECLINE_ANSWER)


@pytest.mark.skipif(not finetuned_model_path().exists(), reason="no fine-tuned model yet (make finetune, or notebook 04)")
def test_the_exported_model_never_shows_a_cut_answer(app):
    found = answer_check.check_exported_model(finetuned_model_path(), app)
    assert not found.shown_cut, found.as_record()
