"""Which catalogue products a question names, and names that look like the catalogue's but are not in it.

    named_products("granite peak boots vs alpine ascent boots?")  -> [Granite Peak ..., Alpine Ascent ...]
    lookalike_names("is the beacon 600 brighter than the 400?")   -> ["beacon 600"]

A product is named when the question has the first word of its name and one more word or number of it
("ridgeway 45", "glowpath lantern"): a first word alone can be an ordinary word ("pocket", "summit").
A look-alike is a catalogue model word followed by a size or number that no product of that model has
("Beacon 600", "Ridgeway 60L"): the store does not carry it, and a small model would invent its specs.
An unknown product type is a word in "do you sell ...?" or "which ... are available?" that appears
nowhere in the store's documents ("kayaks", "hammocks").
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Sequence

from contoso_chat import records
from contoso_chat.paths import data_dir
from contoso_chat.records import Product

WORD = re.compile(r"[a-z]+|\d+")
_STOP = r"(?=\s+(?:i|for|that|with|to|which|and|or|in|like|from)\b|[?.,!;]|$)"
ASKS_FOR = re.compile(  # what a customer asks the store to have, in the words they use for it
    r"\b(?:you|we|contoso(?:\s+outdoors)?)\s+(?:guys\s+)?(?:sell|carry|stock|have|offer)\s+(?:any\s+|an?\s+|some\s+)?"
    rf"(?P<a>[a-z][\w -]*?){_STOP}"
    r"|\b(?:which|what)\s+(?P<b>[a-z][\w -]*?)\s+(?:are|is)\s+(?:available|in\s+stock|on\s+sale)"
    r"|\b(?:which|what)\s+(?P<c>[a-z][\w -]*?)\s+(?:do|does)\s+(?:you|contoso(?:\s+outdoors)?)\s+"
    r"(?:sell|carry|stock|have|offer)\b", re.IGNORECASE)


def _tokens(text: str) -> list[str]:
    """Lower-case words and digit runs ("45L" -> "45", "l"), plurals reduced to their singular form."""
    words = WORD.findall(text.lower().replace("aluminium", "aluminum"))
    return [w[:-1] if len(w) > 3 and w.endswith("s") and not w.endswith("ss") else w for w in words]


def _name_tokens(product: Product) -> list[str]:
    return [t for t in _tokens(product.name) if t not in {"l"}]


def named_products(question: str, catalogue: Sequence[Product] | None = None) -> list[Product]:
    """The catalogue products the question names, in the order it names them."""
    asked = _tokens(question)
    found = []
    for product in catalogue or records.products():
        first, *rest = _name_tokens(product)
        if first in asked and any(t in asked for t in rest):
            found.append((asked.index(first), product))
    return [p for _, p in sorted(found, key=lambda pair: pair[0])]


def lookalike_names(question: str, catalogue: Sequence[Product] | None = None) -> list[str]:
    """Model word + number pairs in the question that match no product of the catalogue ("beacon 600")."""
    catalogue = catalogue or records.products()
    numbers: dict[str, set[str]] = {}
    for product in catalogue:
        tokens = _name_tokens(product)
        numbers.setdefault(tokens[0], set()).update(t for t in tokens if t.isdigit())
    asked = _tokens(question)
    found = []
    for i, token in enumerate(asked):
        if token not in numbers or not numbers[token]:
            continue
        following = [t for t in asked[i + 1:i + 3] if t.isdigit()]
        if following and following[0] not in numbers[token]:
            found.append(f"{token} {following[0]}")
    return found


@lru_cache(maxsize=2)
def store_vocabulary(root: Path | None = None) -> frozenset[str]:
    """Every word of the catalogue, the manuals and the policies."""
    root = root or data_dir()
    files = [root / "products" / "products.csv", *sorted((root / "products" / "manuals").glob("*.md")),
             *sorted((root / "policies").glob("*.md"))]
    return frozenset(t for path in files for t in _tokens(path.read_text(encoding="utf-8")))


def unknown_product_types(question: str, root: Path | None = None) -> list[str]:
    """Words of what the customer asks the store to sell that appear nowhere in its documents ("kayak")."""
    vocabulary = store_vocabulary(root)
    found = []
    for match in ASKS_FOR.finditer(question):
        phrase = next(group for group in match.groups() if group)
        found += [w for w in _tokens(phrase) if len(w) > 3 and not w.isdigit() and w not in vocabulary]
    return found


def not_carried(question: str) -> list[str]:
    """Why a question is about something the store does not carry: look-alike model names, unknown product types."""
    return lookalike_names(question) + unknown_product_types(question)


def product_words(product: Product) -> set[str]:
    """The words of a product's name a customer may use for it without the model name ("tent", "headlamp")."""
    return {t for t in _name_tokens(product)[1:] if not t.isdigit() and len(t) > 2}


def mentions(question: str, product: Product) -> bool:
    """True when the question names the product or uses a word of its name ("the headlamps I got")."""
    asked = set(_tokens(question))
    return product in named_products(question, [product]) or bool(product_words(product) & asked)
