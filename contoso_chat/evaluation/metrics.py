"""Deterministic answer and retrieval metrics: key facts, unsupported claims, citations, declines, context recall.

These need no model, so they are fast, repeatable and cheap enough for every pull request. Each
judges the answer the user would read, not what the app put into the prompt:
- a key fact counts only as a whole number with its unit (or a whole word), bounded on both sides,
  so '74 g' is not found in '174 g', '$75' not in '$750' and '90 m' not in '90 m/s'; it does not count
  where the answer negates it ("it is not 2.1 kg"), where a comparison puts it beside the other product
  only, or in an answer that states many figures nobody asked for (no credit for a dump);
- an unsupported claim is a number with a unit, or a price, that appears in none of the facts the
  model was shown; number words ("two kilograms") and currency words ("199 dollars", "USD 199", "€199")
  are read as figures first;
- citations are the source ids the model itself wrote, and one counts as right only when it is expected
  and the sentence it follows states no figure that its source, as shown, does not contain;
- a decline is the app's decline signal (`usage["declined"]`) or an answer that only says it cannot
  answer, in any words; an empty answer is neither a decline nor an answer.
"""

from __future__ import annotations

import json
import re
import unicodedata
from typing import Iterable, Sequence

# Unit spellings after a number, mapped to one canonical form (longest spellings first).
UNIT_FORMS: dict[str, tuple[str, ...]] = {
    "kg": ("kilogrammes", "kilogramme", "kilograms", "kilogram", "kilos", "kilo", "kgs", "kg"),
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
_PER_UNIT = r"(?:/[a-z0-9²³]+)*"  # "m/s", "g/m²/24h": a rate or density is a unit of its own
_QUANTITY = re.compile(rf"(?<![\w.])({NUMBER}(?:\s*(?:-|x)\s*{NUMBER})*)\s*((?:{_UNIT_ALTERNATION}){_PER_UNIT})(?![\w²³])")
_PRICE = re.compile(rf"(?<![\w.])([$€£])\s?({NUMBER})(?![\d])")
_BOUNDARY_LEFT = r"(?<![\w.$€£-])"
_BOUNDARY_RIGHT = r"(?![\w/²³]|[.,]\d)"
_SMALL_NUMBERS = {word: value for value, word in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen".split())}
_TENS = {word: 10 * value for value, word in enumerate("_ _ twenty thirty forty fifty sixty seventy eighty ninety".split())
         if word != "_"}
_NUMBER_WORD = "|".join([*_SMALL_NUMBERS, *_TENS, "hundred", "thousand", "a", "and", "point"])
_FIRST_NUMBER_WORD = "|".join([*_SMALL_NUMBERS, *_TENS, "a"])
_SPELLED = re.compile(rf"\b((?:{_FIRST_NUMBER_WORD})(?:[\s-]+(?:{_NUMBER_WORD}))*)(?=[\s-]+(?:{_UNIT_ALTERNATION}|dollars?|"
                      rf"euros?|bucks)\b)")
_CURRENCY_WORDS = [(re.compile(rf"({NUMBER})\s*(?:us\s*)?(?:dollars?|bucks|usd)\b"), r"$\1"),
                   (re.compile(rf"\b(?:usd|us\$)\s*({NUMBER})"), r"$\1"),
                   (re.compile(rf"({NUMBER})\s*(?:euros?|eur)\b"), r"€\1"), (re.compile(rf"\beur\s*({NUMBER})"), r"€\1"),
                   (re.compile(rf"({NUMBER})\s*(?:gbp)\b"), r"£\1"), (re.compile(rf"\bgbp\s*({NUMBER})"), r"£\1")]


def _spelled_number(words: str) -> str | None:
    """'two' -> '2', 'twenty five' -> '25', 'two point one' -> '2.1', 'a hundred' -> '100' (None if not a number)."""
    tokens = [t for t in re.split(r"[\s-]+", words) if t and t != "and"]
    whole, decimals = (tokens, []) if "point" not in tokens else (tokens[:tokens.index("point")],
                                                                   tokens[tokens.index("point") + 1:])
    total, current = 0, 0
    for token in whole:
        if token in _SMALL_NUMBERS:
            current += _SMALL_NUMBERS[token]
        elif token in _TENS:
            current += _TENS[token]
        elif token == "a":
            current += 1
        elif token == "hundred":
            current = max(current, 1) * 100
        elif token == "thousand":
            total, current = total + max(current, 1) * 1000, 0
    if not whole or whole == ["a"] or any(t not in _SMALL_NUMBERS for t in decimals):
        return None
    number = str(total + current)
    return number + ("." + "".join(str(_SMALL_NUMBERS[t]) for t in decimals) if decimals else "")


def normalize(text: str) -> str:
    """Lower case; one form for dashes, spaces, thousands separators, decimals, ranges, prices and units;
    number words before a unit or a currency word become digits, currency words become symbols."""
    text = unicodedata.normalize("NFKC", text).lower()
    text = text.replace("\u2212", "-").replace("\u2013", "-").replace("\u2014", " - ").replace("\u2019", "'")
    text = text.replace("\u00a0", " ").replace("×", "x")
    text = _SPELLED.sub(lambda m: _spelled_number(m.group(1)) or m.group(1), text)
    text = re.sub(r"\bminus\s+(?=\d)", "-", text)
    text = re.sub(r"(?<=\d),(?=\d{3}\b)", "", text)  # 20,000 -> 20000
    text = re.sub(r"(\d+\.\d*?)0+\b", r"\1", text)  # 2.10 -> 2.1, 549.00 -> 549.
    text = re.sub(r"(\d)\.(?!\d)", r"\1", text)  # 549. -> 549
    text = re.sub(r"(?<=\d)\s*(?:-|to)\s*(?=-?\d)", "-", text)  # 41 - 53, 41 to 53 -> 41-53
    text = re.sub(r"(?<=\d)\s+x\s+(?=\d)", " x ", text)
    text = re.sub(r"\s*°\s*([cf])\b", r" °\1", text)
    text = re.sub(r"(?<=\d)°(?=\s)", " °", text)
    for pattern, replacement in _CURRENCY_WORDS:
        text = pattern.sub(replacement, text)

    def unit(match: re.Match) -> str:
        return f"{match.group(1)} {_SPELLING[match.group(2)]}"

    text = re.sub(rf"({NUMBER})(?:\s*|-)({_UNIT_ALTERNATION})(?![\w²])", unit, text)  # "3-year" is "3 years"
    text = re.sub(r"([$€£])\s+(?=\d)", r"\1", text)
    return re.sub(r"\s+", " ", text).strip()


def _pattern(fact: str) -> re.Pattern:
    return re.compile(_BOUNDARY_LEFT + re.escape(normalize(fact)) + _BOUNDARY_RIGHT)


NEGATION_WINDOW = 3  # words before a figure in which a negation denies it ("it is not 2.1 kg", "isn't rated to -7 °C")
_NEGATIONS = {"not", "no", "never", "nor", "neither", "cannot"}
_LIMIT_WORDS = {"more", "less", "fewer", "longer", "later", "over", "under", "above", "below", "beyond", "exceed",
                "exceeds", "exceeding", "than", "up", "only", "just", "below", "past"}  # "do not exceed 18 kg" states a limit
_CLAUSE_BREAK = re.compile(r"[,;:!?()]|\.(?=\s|$)|\s-\s|\b(?:and|but|while|whereas|versus|vs|compared|however)\b")


def _negated(text: str, start: int) -> bool:
    """True when a negation governs the words just before `start` in the same clause."""
    clause = _CLAUSE_BREAK.split(text[max(0, start - 80):start])[-1]
    words = re.findall(r"[\w']+", clause)[-NEGATION_WINDOW:]
    for position, word in enumerate(words):
        if word in _NEGATIONS or word.endswith("n't"):
            return not any(w in _LIMIT_WORDS for w in words[position + 1:])
    return False


def _mentions(clause: str, names: Iterable[str]) -> bool:
    return any(re.search(rf"(?<![\w]){re.escape(name)}(?![\w])", clause) for name in names)


def product_aliases(name: str, others: Sequence[str]) -> set[str]:
    """How an answer may name a product beside others: its full name, its first two words, and its first word when
    no other product's name contains it (normalized like the answer)."""
    words = name.split()
    aliases = {name, " ".join(words[:2])}
    if len(words[0]) >= 4 and not any(words[0].lower() in other.lower().split() for other in others):
        aliases.add(words[0])
    return {normalize(a) for a in aliases}


def _bound_elsewhere(text: str, start: int, end: int, own: set[str], others: set[str]) -> bool:
    """True when the clause around a figure names another product and not the figure's own (figures swapped)."""
    before = _CLAUSE_BREAK.split(text[max(0, start - 120):start])[-1]
    after = _CLAUSE_BREAK.split(text[end:end + 120])[0]
    clause = before + " " + after
    return _mentions(clause, others) and not _mentions(clause, own)


def fact_stated(fact: str, answer: str, product: str | None = None, other_products: Sequence[str] = ()) -> bool:
    """True when the answer states the key fact: any of its ' | '-separated forms, whole, not negated, and (when the
    fact belongs to one of several products compared) not in a clause that names only another product."""
    text = normalize(answer)
    own = product_aliases(product, other_products) if product else set()
    others = set().union(*(product_aliases(o, [product or ""]) for o in other_products)) - own if product else set()
    for form in fact.split(" | "):
        if not form.strip():
            continue
        for match in _pattern(form).finditer(text):
            if _negated(text, match.start()):
                continue
            if others and _bound_elsewhere(text, match.start(), match.end(), own, others):
                continue
            return True
    return False


def fact_found(fact: str, answer: str) -> bool:
    """True when the text contains the key fact as a whole (any form, with boundaries): for checking data files."""
    text = normalize(answer)
    return any(_pattern(form).search(text) for form in fact.split(" | ") if form.strip())


MAX_EXTRA_FIGURES = 4  # more figures than this beyond the key facts make an answer a dump, not an answer


def extra_figures(answer: str, key_facts: Sequence[str]) -> list[str]:
    """The figures an answer states that are no form of any key fact (what nobody asked for)."""
    asked = {claim for fact in key_facts for form in fact.split(" | ") for claim in claims(form)}
    return [claim for claim in claims(answer) if claim not in asked]


def keyfact_score(answer: str, key_facts: Sequence[str], fact_products: Sequence[str] | None = None) -> float:
    """Share of the key facts the answer states (1.0 when there are none to state), 0 for a dump of figures.

    `fact_products[i]` names the product key fact i belongs to (comparisons): a figure stated beside the other
    product only does not count."""
    if not key_facts:
        return 1.0
    if len(extra_figures(answer, key_facts)) > MAX_EXTRA_FIGURES:
        return 0.0
    products = list(fact_products) if fact_products and len(set(fact_products)) > 1 else [None] * len(key_facts)
    stated = [fact_stated(fact, answer, product, [p for p in products if p and p != product])
              for fact, product in zip(key_facts, products)]
    return sum(stated) / len(key_facts)


def claims(answer: str) -> list[str]:
    """The numbers with a unit, and the prices, that an answer states (normalized, in order)."""
    text = normalize(answer)
    found = [f"{m.group(1)} {m.group(2)}" for m in _QUANTITY.finditer(text)]
    found += [f"{m.group(1)}{m.group(2)}" for m in _PRICE.finditer(text)]
    return list(dict.fromkeys(found))


def _stated_in(claim: str, context: str) -> bool:
    return bool(re.search(_BOUNDARY_LEFT + re.escape(claim) + _BOUNDARY_RIGHT, context))


def unsupported_claims(answer: str, shown: Iterable[str]) -> list[str]:
    """The claims of the answer that appear in none of the texts the model was shown (facts, orders, question)."""
    context = " \n ".join(normalize(text) for text in shown)
    return [claim for claim in claims(answer) if not _stated_in(claim, context)]


_PROPER_NAME = re.compile(r"\b[A-Z][a-z]+(?:[ -][A-Z][A-Za-z0-9]+)+\b")
_NAME_LEADING_WORDS = {"the", "a", "an", "our", "your", "this", "that", "these", "those", "i", "my", "we", "you", "yes",
                       "no", "hi", "hello", "dear", "sorry", "thanks", "it", "its", "for", "to", "at", "in", "on", "of",
                       "and", "with", "from", "please", "each", "every", "both", "one", "two", "contact", "visit", "use",
                       "ask", "call", "try", "see", "check", "buy", "get", "find", "search", "order", "read", "write",
                       "go", "choose", "pick", "consider", "compare", "also", "then", "but", "or", "if", "when"}
STORE_NAMES = "Contoso Outdoors Contoso Chat"  # the store and its assistant, which any answer may name


def unsupported_names(answer: str, shown: Iterable[str], known: str = STORE_NAMES) -> list[str]:
    """Names (two or more capitalised words: a store, brand, product or organisation) the answer states with a
    word that appears in none of the texts the model was shown, nor in `known` (the store's own names)."""
    words = set(re.findall(r"[a-z0-9]+", " ".join([*shown, known]).lower()))
    names = []
    for match in _PROPER_NAME.finditer(answer):
        parts = match.group(0).replace("-", " ").split()
        while parts and parts[0].lower() in _NAME_LEADING_WORDS:
            parts = parts[1:]
        if len(parts) >= 2 and any(p.lower() not in words for p in parts):
            names.append(" ".join(parts))
    return list(dict.fromkeys(names))


_SOURCE_ID = r"(?:product-\d+|policy-[a-z]+)"
_CITATION = re.compile(rf"\[\s*({_SOURCE_ID}(?:\s*[,;]\s*{_SOURCE_ID})*)\s*\]", re.IGNORECASE)
_FACT_LINE = re.compile(rf"^\[({_SOURCE_ID})\]\s*(.+)$", re.IGNORECASE | re.MULTILINE)


def facts_by_source(shown: Sequence[str]) -> dict[str, str]:
    """The fact lines the model was shown, joined per source id (from the `[source-id] text` lines of the prompt)."""
    facts: dict[str, list[str]] = {}
    for text in shown[:1]:  # the system message carries the facts
        for source, line in _FACT_LINE.findall(text):
            facts.setdefault(source.lower(), []).append(line)
    return {source: "\n".join(lines) for source, lines in facts.items()}


def cited_statements(reply: str) -> list[tuple[str, str]]:
    """(source id, the text that citation follows) for each inline citation of a model reply; a JSON reply
    {answer, sources} attributes its whole answer to each source it lists."""
    try:
        data = json.loads(reply, strict=False)
    except ValueError:
        data = None
    if isinstance(data, dict):
        answer = str(data.get("answer", ""))
        return [(str(s).lower(), answer) for s in data.get("sources", []) if isinstance(s, str)]
    statements, start = [], 0
    for mark in _CITATION.finditer(reply):
        segment = reply[start:mark.start()]
        if segment.strip(" \t") == "" and statements:  # [a][b] after one sentence: both cite that sentence
            segment = statements[-1][1]
        for source in re.split(r"\s*[,;]\s*", mark.group(1)):
            statements.append((source.lower(), segment))
        start = mark.end()
    return statements


def unsupported_citations(reply: str, shown: Sequence[str], question: str = "") -> set[str]:
    """Cited source ids whose sentence states a figure that the source's facts, as shown, do not contain (the
    customer's own question may supply a figure too)."""
    facts = {source: normalize(text) for source, text in facts_by_source(shown).items()}
    asked = normalize(question)
    return {source for source, sentence in cited_statements(reply)
            if any(not _stated_in(claim, facts.get(source, "")) and not _stated_in(claim, asked)
                   for claim in claims(sentence))}


def citation_precision(cited: Sequence[str], expected: Sequence[str], unsupported: Iterable[str] = ()) -> float | None:
    """Share of the sources the model cited that are expected and whose sentences its facts support (None when it
    cited nothing)."""
    cited_set = set(cited)
    return len(cited_set & set(expected) - set(unsupported)) / len(cited_set) if cited_set else None


def citation_recall(cited: Sequence[str], expected: Sequence[str]) -> float | None:
    """Share of the expected sources the model cited (None when nothing is expected)."""
    wanted = set(expected)
    return len(set(cited) & wanted) / len(wanted) if wanted else None


_MARKUP = re.compile(r"[*_`#>~]+")
_APOLOGY = re.compile(r"^(?:(?:i'm|i am|we're|we are)\s+)?(?:so\s+|very\s+|really\s+)?(?:sorry|afraid)\b[\s,.!:;-]*"
                      r"|^(?:unfortunately|apologies|my apologies)\b[\s,.!:;-]*")
_INABILITY = re.compile(  # "I don't know", "we cannot help", "I'm unable to answer", "I'm not sure": not "I don't recommend"
    r"^(?:i|we)\s*(?:'m|am|are|'re)?\s*(?:(?:do not|don't|dont|cannot|can't|cant|can not|could not|couldn't|"
    r"won't be able to|will not be able to|am unable to|are unable to|'m unable to|unable to|am not able to|"
    r"not able to)\s+(?:\w+\s+)?(?:know|have|help|answer|find|see|sell|carry|stock|offer|provide|assist|share|"
    r"access|give|tell|say|locate)\b|not sure\b|have no (?:information|details|data|idea)\b)")


def reads_as_decline(answer: str) -> bool:
    """True when the answer only says it cannot answer, in whatever words ("I'm sorry, I don't know.",
    "**I cannot help with that.**"), and states no figure."""
    text = _CITATION.sub("", _MARKUP.sub("", normalize(answer))).strip(" \"'")
    previous = None
    while previous != text:
        previous, text = text, _APOLOGY.sub("", text).strip(" \"'")
    return bool(text) and bool(_INABILITY.match(text)) and not claims(answer)


def declined_answer(declined: bool, answer: str | None) -> bool:
    """The app declined: its decline signal, or an answer that only says it cannot answer."""
    return bool(declined) or (answer is not None and reads_as_decline(answer))


def refusal_correct(declined: bool, category: str, answer: str | None = None) -> bool:
    """Out-of-scope questions must be declined; every other question must be answered. An empty answer is
    neither, so it is never correct."""
    if answer is not None and not answer.strip():
        return False
    return declined_answer(declined, answer) == (category == "out-of-scope")


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
