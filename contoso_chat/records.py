"""The Contoso Outdoors data set as typed records, and loaders that name the file, line and field on error."""

from __future__ import annotations

import csv
import datetime as dt
import json
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from contoso_chat.paths import data_dir

Role = Literal["user", "assistant"]


class DataError(ValueError):
    """A data file is malformed; the message names the file, the line and the field."""


class Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Product(Record):
    id: int = Field(gt=0)
    name: str = Field(min_length=3)
    price: float = Field(gt=0)
    category: str
    brand: str
    description: str = Field(min_length=20)

    @property
    def source_id(self) -> str:
        return f"product-{self.id}"


class Address(Record):
    street: str
    city: str
    state: str
    zip: str
    country: str


class OrderLine(Record):
    order_id: str = Field(pattern=r"^ORD-\d{5}$")
    product_id: int
    quantity: int = Field(gt=0)
    unit_price: float = Field(gt=0)
    total: float = Field(gt=0)
    date: str = Field(pattern=r"^\d{4}-\d{2}-\d{2}$")


class Customer(Record):
    id: str = Field(pattern=r"^C\d{4}$")
    first_name: str
    last_name: str
    email: str = Field(pattern=r"^[^@\s]+@[^@\s]+$")
    phone: str
    address: Address
    membership: Literal["Base", "Gold", "Platinum"]
    orders: list[OrderLine]

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}"

    @property
    def unique_detail(self) -> str:
        """The street name, which appears in no other file: a leak of it is detectable."""
        return self.address.street.split(" ", 1)[1]


class Turn(Record):
    role: Role
    content: str = Field(min_length=1)


Split = Literal["dev", "test"]
CaseSplit = Literal["dev", "test", "audit"]
Phrasing = Literal["catalog", "customer", "situation", "templated"]
Topic = Literal["spec", "sizing", "care", "setup", "troubleshooting", "included", "compatibility", "safety",
                "order", "policy", "not-sold", "off-topic"]
Category = Literal["product-fact", "comparison", "multi-part", "order-history", "policy", "multi-turn", "out-of-scope"]


class QACase(Record):
    """One evaluation question. A key fact may list equivalent forms separated by ' | ' (e.g. both unit systems).

    `family` groups the cases that ask the same need in different words (a paraphrase family: the catalog's
    words, the customer's own words, a situation the customer describes); `phrasing` says which one this is
    ("templated" for the first, template-written set kept for comparison); `topic` says what the need is about.
    In a comparison, key fact i belongs to the product of expected source i.
    """

    id: str
    customer_id: str
    question: str = Field(min_length=3)
    chat_history: list[Turn] = []
    reference_answer: str
    key_facts: list[str]
    expected_sources: list[str]
    category: Category
    split: CaseSplit
    family: str = Field(min_length=3)
    phrasing: Phrasing
    topic: Topic

    @property
    def products(self) -> set[int]:
        """The ids of the products this case is about."""
        return {int(s.split("-")[1]) for s in self.expected_sources if s.startswith("product-")}


class RedTeamCase(Record):
    """One attack or benign look-alike. `harm_category`: set when the request itself is harmful (the label a harm
    check is tuned against); `expected_outcome`: "answer" (must be answered, with `key_facts`) or "safe" (any
    answer that breaks no rule will do); `must_not_contain`: strings that show this attack worked."""

    id: str
    customer_id: str
    attack: str = Field(min_length=3)
    chat_history: list[dict] = []
    category: Literal[
        "prompt-injection", "system-prompt-extraction", "cross-customer", "history-injection",
        "harmful-off-topic", "action-request", "benign",
    ]
    harm_category: Literal["Violence", "SelfHarm", "Sexual", "Hate", "Crime"] | None = None
    expected_outcome: Literal["answer", "safe"]
    key_facts: list[str]
    must_not_contain: list[str]
    expected_behavior: str
    split: Split

    @field_validator("chat_history")
    @classmethod
    def _roles_are_strings(cls, turns: list[dict]) -> list[dict]:
        for turn in turns:
            if not isinstance(turn.get("role"), str) or not isinstance(turn.get("content"), str):
                raise ValueError("each chat_history turn needs string 'role' and 'content'")
        return turns


class Price(Record):
    model: str
    provider: str
    input_per_1k: float = Field(ge=0)
    output_per_1k: float = Field(ge=0)
    context_window: int = Field(gt=0)
    price_date: str
    source: str


def _field_of(error: ValidationError) -> str:
    first = error.errors()[0]
    return ".".join(str(p) for p in first["loc"]) + f": {first['msg']}"


def _validate(model: type[Record], row: dict, where: str) -> Record:
    try:
        return model.model_validate(row)
    except ValidationError as error:
        raise DataError(f"{where}: field {_field_of(error)}") from None


def read_jsonl(path: Path, model: type[Record]) -> list:
    """Records from a JSON Lines file; errors name the file and line."""
    records = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            raise DataError(f"{path.name} line {number}: not valid JSON ({error.msg})") from None
        records.append(_validate(model, row, f"{path.name} line {number}"))
    return records


def read_csv(path: Path, model: type[Record]) -> list:
    """Records from a CSV file with a header row; errors name the file and line."""
    with path.open(encoding="utf-8", newline="") as handle:
        return [_validate(model, row, f"{path.name} line {n}") for n, row in enumerate(csv.DictReader(handle), start=2)]


@lru_cache(maxsize=4)
def products(root: Path | None = None) -> tuple[Product, ...]:
    """The catalog, `data/products/products.csv`."""
    return tuple(read_csv((root or data_dir()) / "products" / "products.csv", Product))


def product_by_id(product_id: int) -> Product:
    """One catalog row by id."""
    for product in products():
        if product.id == product_id:
            return product
    raise KeyError(f"no product with id {product_id}")


def manual_paths(root: Path | None = None) -> dict[int, Path]:
    """Manual file per product id (`data/products/manuals/<id>-<slug>.md`)."""
    folder = (root or data_dir()) / "products" / "manuals"
    return {int(p.name.split("-", 1)[0]): p for p in sorted(folder.glob("*.md"))}


def policy_paths(root: Path | None = None) -> dict[str, Path]:
    """Policy file per source id (`policy-<stem>`)."""
    folder = (root or data_dir()) / "policies"
    return {f"policy-{p.stem}": p for p in sorted(folder.glob("*.md"))}


def customers(root: Path | None = None) -> tuple[Customer, ...]:
    """Every customer file in `data/customers/`, each validated."""
    folder = (root or data_dir()) / "customers"
    loaded = []
    for path in sorted(folder.glob("*.json")):
        try:
            row = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            raise DataError(f"{path.name} line {error.lineno}: not valid JSON ({error.msg})") from None
        loaded.append(_validate(Customer, row, path.name))
    return tuple(loaded)


EVAL_FILES = {"customers": "qa.jsonl", "templated": "qa_templated.jsonl", "audit": "audit.jsonl"}
EvalSet = Literal["customers", "templated", "audit"]


def qa_cases(root: Path | None = None, split: CaseSplit | None = None, collection: EvalSet = "customers") -> list[QACase]:
    """Evaluation questions: `data/eval/qa.jsonl` (in customers' words; "dev" to tune on, "test" to report),
    `qa_templated.jsonl` (the first, template-written set, kept as one more phrasing) or `audit.jsonl` (fresh
    questions written after tuning, never used to tune). The audit set is read only when asked for by name."""
    if split == "audit":
        collection = "audit"
    cases = read_jsonl((root or data_dir()) / "eval" / EVAL_FILES[collection], QACase)
    return [c for c in cases if split is None or c.split == split]


def redteam_cases(root: Path | None = None, split: Split | None = None) -> list[RedTeamCase]:
    """The red-team set, `data/eval/redteam.jsonl`: every case, or one split ("dev" to tune on, "test" to report)."""
    cases = read_jsonl((root or data_dir()) / "eval" / "redteam.jsonl", RedTeamCase)
    return [c for c in cases if split is None or c.split == split]


def prices(root: Path | None = None) -> list[Price]:
    """Token prices per model, `data/pricing.csv`."""
    return read_csv((root or data_dir()) / "pricing.csv", Price)


PRICE_LIST_MAX_AGE_MONTHS = 6  # list prices change; older ones get a warning wherever a cost is shown


def price_list_age(price_rows: list[Price], today: dt.date | None = None) -> tuple[dt.date, int]:
    """The oldest price date in the list and its age in whole months."""
    today = today or dt.date.today()
    oldest = min(dt.date.fromisoformat(p.price_date) for p in price_rows)
    months = (today.year - oldest.year) * 12 + today.month - oldest.month - (today.day < oldest.day)
    return oldest, max(months, 0)


def price_warning(price_rows: list[Price] | None = None, today: dt.date | None = None) -> str | None:
    """A warning to show beside costs when the list prices are older than PRICE_LIST_MAX_AGE_MONTHS, else None."""
    oldest, months = price_list_age(price_rows if price_rows is not None else prices(), today)
    if months <= PRICE_LIST_MAX_AGE_MONTHS:
        return None
    return (f"The list prices in data/pricing.csv date from {oldest.isoformat()}, {months} months ago: costs here "
            "are estimates at those prices. Check the Azure OpenAI pricing page, and update the file's rows and "
            "dates, before you quote a cost.")


def source_ids(root: Path | None = None) -> set[str]:
    """Every id a citation or an `expected_sources` entry may use."""
    return {p.source_id for p in products(root)} | set(policy_paths(root))
