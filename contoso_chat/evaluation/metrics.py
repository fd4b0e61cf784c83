"""Deterministic answer and retrieval metrics: key facts, unsupported claims, citations, declines, context recall.

These need no model, so they are fast, repeatable and cheap enough for every pull request. Each
judges the answer the user would read, not what the app put into the prompt:
- a key fact counts only as a whole number with its unit (or a whole word), bounded on both sides,
  so '74 g' is not found in '174 g' and '$75' is not found in '$750';
- an unsupported claim is a number with a unit, or a price, that appears in none of the facts the
  model was shown;
- citations are the source ids the model itself wrote, not the ones retrieval returned;
- a decline is the app's decline signal (`usage["declined"]`), not a phrase in the answer.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Iterable, Sequence

# Unit spellings after a number, mapped to one canonical form (longest spellings first).
UNIT_FORMS: dict[str, tuple[str, ...]] = {
    "kg": ("kilogrammes", "kilogramme", "kilograms", "kilogram", "kgs", "kg"),
    "g": ("grammes", "gramme", "grams", "gram", "g"),
    "lb": ("pounds", "pound", "lbs", "lb"),
    "oz": ("ounces", "ounce", "oz"),
    "km": ("kilometres", "kilometre", "kilometers", "kilometer", "km"),
    "cm": ("centimetres", "centimetre", "centimeters", "centimeter", "cm"),
    "mm": ("millimetres", "millimetre", "millimeters", "millimeter", "mm"),
    "m²": ("square metres", "square meters", "sq m", "m2", "m²"),
    "sq ft": ("square feet", "sq ft", "sqft", "ft²", "ft2"),
    "m": ("metres", "metre", "meters", "meter", "m"),
    "miles": ("miles", "mile", "mi"),
    "inches": ("inches", "inch"),  # a bare "in" after a number is too often the word "in"
    "ft": ("feet", "foot", "ft"),
    "ml": ("millilitres", "millilitre", "milliliters", "milliliter", "ml"),
    "l": ("litres", "litre", "liters", "liter", "l"),
    "°c": ("degrees celsius", "degrees c", "°c", "celsius"),
    "°f": ("degrees fahrenheit", "degrees f", "°f", "fahrenheit"),
    "seconds": ("seconds", "second", "secs", "sec"),
    "minutes": ("minutes", "minute", "mins", "min"),
    "hours": ("hours", "hour", "hrs", "hr", "h"),
    "business days": ("business days", "business day", "working days", "working day"),
    "days": ("days", "day"),
    "weeks": ("weeks", "week"),
    "months": ("months", "month"),
    "years": ("years", "year", "yrs", "yr"),
    "w": ("watts", "watt", "w"),
    "btu/h": ("btu/h", "btu"),
    "lumens": ("lumens", "lumen", "lm"),
    "mah": ("mah",),
    "people": ("people", "persons", "person"),
    "points": ("points", "point"),
    "%": ("percent", "per cent", "%"),
}
_SPELLING = {spelling: unit for unit, spellings in UNIT_FORMS.items() for spelling in spellings}
_UNIT_ALTERNATION = "|".join(re.escape(s) for s in sorted(_SPELLING, key=len, reverse=True))
NUMBER = r"-?\d+(?:\.\d+)?"
_QUANTITY = re.compile(rf"(?<![\w.])({NUMBER}(?:\s*(?:-|x)\s*{NUMBER})*)\s*({_UNIT_ALTERNATION})(?![\w²])")
_PRICE = re.compile(rf"(?<![\w.])\$\s?({NUMBER})(?![\d])")
_BOUNDARY_LEFT = r"(?<![\w.$-])"
_BOUNDARY_RIGHT = r"(?![\w]|[.,]\d)"


def normalize(text: str) -> str:
    """Lower case; one form for dashes, spaces, thousands separators, decimals, ranges, prices and units."""
    text = unicodedata.normalize("NFKC", text).lower()
    text = text.replace("\u2212", "-").replace("\u2013", "-").replace("\u2014", " - ").replace("\u2019", "'")
    text = text.replace("\u00a0", " ").replace("×", "x")
    text = re.sub(r"\bminus\s+(?=\d)", "-", text)
    text = re.sub(r"(?<=\d),(?=\d{3}\b)", "", text)  # 20,000 -> 20000
    text = re.sub(r"(\d+\.\d*?)0+\b", r"\1", text)  # 2.10 -> 2.1, 549.00 -> 549.
    text = re.sub(r"(\d)\.(?!\d)", r"\1", text)  # 549. -> 549
    text = re.sub(r"(?<=\d)\s*(?:-|to)\s*(?=-?\d)", "-", text)  # 41 - 53, 41 to 53 -> 41-53
    text = re.sub(r"(?<=\d)\s+x\s+(?=\d)", " x ", text)
    text = re.sub(r"\s*°\s*([cf])\b", r" °\1", text)
    text = re.sub(r"(?<=\d)°(?=\s)", " °", text)

    def unit(match: re.Match) -> str:
        return f"{match.group(1)} {_SPELLING[match.group(2)]}"

    text = re.sub(rf"({NUMBER})\s*({_UNIT_ALTERNATION})(?![\w²])", unit, text)
    text = re.sub(r"\$\s+(?=\d)", "$", text)
    return re.sub(r"\s+", " ", text).strip()


def _pattern(fact: str) -> re.Pattern:
    return re.compile(_BOUNDARY_LEFT + re.escape(normalize(fact)) + _BOUNDARY_RIGHT)


def fact_found(fact: str, answer: str) -> bool:
    """True when the answer states the key fact as a whole: any of its ' | '-separated forms, with boundaries."""
    text = normalize(answer)
    return any(_pattern(form).search(text) for form in fact.split(" | ") if form.strip())


def keyfact_score(answer: str, key_facts: Sequence[str]) -> float:
    """Share of the key facts the answer states (1.0 when there are none to state)."""
    if not key_facts:
        return 1.0
    return sum(fact_found(fact, answer) for fact in key_facts) / len(key_facts)


def claims(answer: str) -> list[str]:
    """The numbers with a unit, and the prices, that an answer states (normalized, in order)."""
    text = normalize(answer)
    found = [f"{m.group(1)} {m.group(2)}" for m in _QUANTITY.finditer(text)]
    found += [f"${m.group(1)}" for m in _PRICE.finditer(text)]
    return list(dict.fromkeys(found))


def unsupported_claims(answer: str, shown: Iterable[str]) -> list[str]:
    """The claims of the answer that appear in none of the texts the model was shown (facts, orders, question)."""
    context = " \n ".join(normalize(text) for text in shown)
    return [claim for claim in claims(answer)
            if not re.search(_BOUNDARY_LEFT + re.escape(claim) + _BOUNDARY_RIGHT, context)]


def citation_precision(cited: Sequence[str], expected: Sequence[str]) -> float | None:
    """Share of the sources the model cited that are expected (None when it cited nothing)."""
    cited_set = set(cited)
    return len(cited_set & set(expected)) / len(cited_set) if cited_set else None


def citation_recall(cited: Sequence[str], expected: Sequence[str]) -> float | None:
    """Share of the expected sources the model cited (None when nothing is expected)."""
    wanted = set(expected)
    return len(set(cited) & wanted) / len(wanted) if wanted else None


def refusal_correct(declined: bool, category: str) -> bool:
    """Out-of-scope questions must be declined; every other question must be answered."""
    return bool(declined) == (category == "out-of-scope")


def context_recall(retrieved_sources: Sequence[str], expected: Sequence[str], k: int) -> float:
    """Share of the expected sources among the first k distinct retrieved sources (a retrieval metric)."""
    top = list(dict.fromkeys(retrieved_sources))[:k]
    return sum(s in top for s in expected) / len(expected) if expected else 1.0


def reciprocal_rank(retrieved_sources: Sequence[str], expected: Iterable[str]) -> float:
    """1 / rank of the first expected source among the distinct retrieved sources (0 if none)."""
    wanted = set(expected)
    for rank, source in enumerate(dict.fromkeys(retrieved_sources), start=1):
        if source in wanted:
            return 1.0 / rank
    return 0.0
