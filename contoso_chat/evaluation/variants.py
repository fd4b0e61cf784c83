"""Named variants of the assistant, for evaluation and comparison.

Each variant is the same ContosoChat with one thing changed, so a difference in the metrics can be
traced to that one change.
"""

from __future__ import annotations

from contoso_chat.assistant import ContosoChat
from contoso_chat.paths import PACKAGE_DIR

PROMPTS = PACKAGE_DIR / "prompt_variants"
VARIANTS: dict[str, dict] = {
    "rag": {},
    "no-rag": {"use_retrieval": False},
    "prompt-v1": {"prompty_path": PROMPTS / "contoso_chat_v1.prompty"},
    "ignores-facts": {"prompty_path": PROMPTS / "ignores_the_facts.prompty"},
    "json-citations": {"citation_style": "json"},
}
DESCRIPTIONS = {
    "rag": "the app as shipped: hybrid retrieval, prompt v3, inline citations",
    "no-rag": "no retrieval: the prompt has no facts (deliberately bad)",
    "prompt-v1": "hybrid retrieval with the first, looser prompt",
    "ignores-facts": "retrieval intact, but the prompt never shows the facts (deliberately bad; the gate must block it)",
    "json-citations": "the shipped app with citations in a JSON reply instead of inline marks",
}


def build_variant(name: str, base: ContosoChat | None = None) -> ContosoChat:
    """A ContosoChat for the named variant, sharing the index, store and client of `base` when given."""
    if name not in VARIANTS:
        raise ValueError(f"unknown variant {name!r}; choose one of {', '.join(VARIANTS)}")
    if base is None:
        return ContosoChat(**VARIANTS[name])
    return ContosoChat(settings=base.settings, retriever=base.retriever, customers=base.customers, chat=base.chat,
                       **VARIANTS[name])
