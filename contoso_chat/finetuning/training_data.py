"""Training data for fine-tuning, made by code from data/: the app's own prompts with answers that copy the fact.

Each example is exactly what the app sends the model (rules, the facts retrieval selects, the
customer line, the history, the question) followed by the answer the model should give: the
fact copied verbatim with its source id, as in `Basecamp Family 6 Tent weight: 11.8 kg (26 lb)
[product-2].`, or `I don't know.` when the facts shown do not answer. Kinds: single
facts with varied questions and answers (tidy ones and ones in customers' words), care, storage and safety
sentences from the manuals, the manuals' FAQ answers asked in customers' words (a trip, a worry, several
sentences of context before the ask), prices from the catalog, the membership policy (its sentences that state a
test question's key fact, such as the points' 24-month expiry, are left out), two facts at once, follow-ups that need the history, questions about orders (made-up
customers who bought dev products, asked about each shape of question, the product named or called by its kind;
half the prompts list every order, half only the lines asked about with their order ids, as the matched-orders
lever shows them), and declines. (Without price and policy examples, the model learned to decline every
question whose answer is not a specification row.) A decline is taught by what the prompt holds, not by the name
asked about: most are questions about a real dev product whose facts retrieval did not bring (the
facts shown are another product's), a few name a product the store does not sell. (Declines that
only ever named unknown products taught the model to decline every product it had not seen, which
is every test product.) Comparisons are not made: for a question about two products, the app's
retrieval brings chunks of one of them, so no prompt the app sends holds both figures.

Only products of the evaluation dev split are used: a test-split product never appears in any
example, not even in the facts retrieval put into a prompt (`leaks` checks this), and no policy
answer states a key fact of a test question.
"""

from __future__ import annotations

import copy
import math
import random
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Sequence

from contoso_chat import chunking, records
from contoso_chat.assistant import ContosoChat, order_lines, standalone_query

Message = dict[str, str]

QUESTIONS = (
    "What is the {attr} of the {product}?", "Can you tell me the {attr} of the {product}?",
    "I'm looking at the {product}. What is its {attr}?", "{product}: what's the {attr}?",
    "Quick question about the {product}: what is the {attr}?", "Do you know the {attr} of the {product}?",
)
WEIGHT_QUESTIONS = ("How much does the {product} weigh?", "How heavy is the {product}?",
                    "What does the {product} weigh?")
# The same asks in the words customers write (a trip, a reason, lower case, no question mark): the model met only
# tidy questions and declined the customers' ones whose facts were in the prompt.
CUSTOMER_QUESTIONS = (
    "planning a weekend trip and looking at the {product} - what's the {attr} on it?",
    "Before I buy the {product} I'd like to know the {attr}.",
    "hi! the {product}, what {attr} does it have",
    "My friend recommended the {product}. Do you know its {attr}?",
    "is there any info on the {attr} of the {product}?",
)
CUSTOMER_WEIGHT_QUESTIONS = (
    "I'm counting grams for a long hike - what does the {product} weigh?",
    "would the {product} be too heavy to carry all day? how much does it weigh",
    "My back isn't great. How heavy is the {product}?",
)
# Care, storage and safety asks, each with the words of the manual sentence that answers it (copied with its mark).
CARE_QUESTIONS = (
    ("How do I clean the {product}?", ("clean with", "wipe", "wash")),
    ("just got back from a muddy trip, how do i clean my {product}?", ("clean with", "wipe", "wash")),
    ("Can I put the {product} in the washing machine?", ("machine wash",)),
    ("How should I store the {product} between trips?", ("stor",)),
    ("it's been raining all week, how do I dry the {product} before putting it away?", ("dry",)),
    ("Is it safe to use a stove inside the {product}?", ("stove", "flame")),
    ("Anything I should be careful about with the {product}?", ("never", "do not", "keep")),
    # tidy "What are the ... ?" asks answered by a sentence: with only "The {attr} of the {product} is {value}" to
    # copy, the model answered them "The washing instructions for the ... is [product-20]." (answer_check)
    ("What are the care instructions for the {product}?", ("wash", "clean", "wipe")),
    ("What is the storage advice for the {product}?", ("stor",)),
    ("What does the warranty on the {product} cover?", ("covers defects", "does not cover")),
    ("Is the {product} under warranty?", ("warranty for",)),
    ("How long is the warranty on my {product}?", ("warranty for",)),
    ("any washing tips for the {product}?", ("wash",)),
)
# What customers say before they ask: with only short questions in training, the model said "I don't know" to 17 of
# the 219 dev questions, most of them long, situational ones whose answer was among the facts shown.
SITUATIONS = (
    "We're off on a three-day hike next week and I'm still sorting my kit. ",
    "i'm new to all this so sorry if it's a silly question, ",
    "My partner and I are packing for a long weekend by the lake. ",
    "Quick one before I place my order: ",
    "We're taking the kids camping for the first time in August. ",
    "I got this as a present and the box went straight in the recycling. ",
)
# A fact is answered by copying the line shown, not by repeating the question around the value ("The {attr} of the
# {product} is {value} [source]."): with that habit, asked for something whose answer is a sentence (washing
# instructions, a warranty), the model repeated the question and put the mark where the answer should be ("The
# warranty on the Summit Dome 2 Tent is [product-1].", 9 of 20 probes in answer_check).
ANSWERS = ("{fact} [{source}].",)
WEIGHT_ANSWERS = ANSWERS + ("The {product} weighs {value} [{source}].",)  # the figure straight after the verb, in
# the words customers use (without it the model learned "weighs [product-1].", the mark where the figure should be)
PRICE_QUESTIONS = ("How much does the {product} cost?", "What is the price of the {product}?",
                   "How much is the {product}?")
PRICE_ANSWERS = ("The {product} costs {price} [{source}].",)
# Membership questions, each with words of the policy sentence that answers it (the answer copies that sentence).
MEMBERSHIP_QUESTIONS = (
    ("How many points do Gold members earn per dollar?", "Gold members earn 1.5 points"),
    ("How many points do Platinum members earn?", "Platinum members earn 2 points"),
    ("What is a block of 100 points worth?", "100 points = $5"),
    ("When do my points expire?", "expire after 24 months"),
    ("How much do I have to spend to reach Platinum?", "Platinum membership is reached after"),
    ("How much do I have to spend to become a Gold member?", "Gold membership is reached after"),
    ("How long before a sale do Platinum members get access?", "48 hours"),
    ("How many free gear repairs do Platinum members get?", "get one free gear repair per year"),
    ("Does any membership tier have a fee?", "no fee for any tier"),
    ("What discount do Gold members get on their birthday?", "receive a 10% birthday discount"),
    ("Can the assistant add points to my account?", "cannot change a tier"),
)
MEMBERSHIP = "policy-membership"
FOLLOW_UPS = ("And what is its {attr}?", "What about its {attr}?", "How about the {attr}?")
DECLINE = "I don't know."
NOT_SOLD = ("Ridgeway 60L Trekking Pack", "Stormshell Down Parka", "Basecamp Family 8 Tent",
            "Twinflame Three-Burner Stove", "Meadow 20 Down Sleeping Bag", "Rollaway Bamboo Table",
            "Granite Peak Trail Sandals", "Glowpath Mini Lantern", "Expedition 90L Pack")
SKIPPED_ATTRIBUTES = {"product name", "brand", "colours", "colour", "included", "in the box"}


@dataclass(frozen=True)
class Spec:
    """One specification row of a product's manual."""

    product: records.Product
    attribute: str
    value: str

    @property
    def fact(self) -> str:
        return f"{self.product.name} {self.attribute.lower()}: {self.value}"


@dataclass(frozen=True)
class Faq:
    """One question and answer of a product manual's FAQ section."""

    product: records.Product
    question: str
    answer: str


def faqs(product_ids: set[int]) -> list[Faq]:
    """The FAQ pairs (a bold question, then its answer) of these products' manuals."""
    pairs = []
    for product_id, path in sorted(records.manual_paths().items()):
        if product_id not in product_ids:
            continue
        _, sections = chunking.split_sections(path.read_text(encoding="utf-8"))
        question = None
        for line in dict(sections).get("FAQ", "").splitlines():
            line = line.strip()
            if line.startswith("**") and line.endswith("**"):
                question = line.strip("*").strip()
            elif line and question:
                pairs.append(Faq(records.product_by_id(product_id), question, line))
                question = None
    return pairs


def in_customers_words(question: str, product: str, rng: random.Random) -> str:
    """A manual's FAQ question as a customer writes it: a situation first, the product named, maybe lower case."""
    if product.lower() not in question.lower():
        question = f"About the {product}: {question[0].lower()}{question[1:]}"
    situation = rng.choice(SITUATIONS)
    asked = situation + (question[0].lower() + question[1:] if situation.endswith(", ") else question)
    return asked.lower().rstrip("?") if rng.random() < 0.3 else asked


@dataclass
class Example:
    """One training conversation: the app's messages and the answer, with what it is for."""

    kind: str
    messages: list[Message]
    products: set[int] = field(default_factory=set)

    @property
    def answer(self) -> str:
        return self.messages[-1]["content"]


def test_products() -> set[int]:
    """Products that appear in the evaluation test split: never in training data."""
    return set().union(*(c.products for c in records.qa_cases(split="test")))


def specs(product_ids: set[int]) -> list[Spec]:
    """The specification rows of these products' manuals (colours, brand and the like left out)."""
    rows = []
    for product_id, path in sorted(records.manual_paths().items()):
        if product_id not in product_ids:
            continue
        _, sections = chunking.split_sections(path.read_text(encoding="utf-8"))
        table = dict(sections).get("Technical specifications", "")
        for line in table.splitlines():
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if len(cells) == 2 and cells[0] and set(cells[0]) - set("-") and cells[0].lower() != "specification" \
                    and cells[0].lower() not in SKIPPED_ATTRIBUTES:
                rows.append(Spec(records.product_by_id(product_id), cells[0], cells[1]))
    return rows


class ExampleMaker:
    """Renders examples through the app itself, so the prompt is exactly what the app would send."""

    def __init__(self, app: ContosoChat, held_out: set[int]) -> None:
        self.app = app
        self.held_out_names = [records.product_by_id(p).name for p in held_out]
        self.customer = app.customers.get("C1004")  # a customer whose orders hold dev products only
        self.matched_app = copy.copy(app)  # the same app showing only the orders asked about, with their ids
        self.matched_app.matched_orders = True
        self.faqs: list[Faq] = []  # the dev products' FAQ pairs (make_examples fills them)
        self.test_key_facts = [fact for case in records.qa_cases(split="test") for fact in case.key_facts]
        policy_text = records.policy_paths()[MEMBERSHIP].read_text(encoding="utf-8")
        self.membership_title = policy_text.splitlines()[0].lstrip("# ").strip()  # facts start with it

    def messages(self, question: str, history: Sequence[Message] = (), customer=None) -> tuple[list[Message], list]:
        query = standalone_query(question, history)
        facts = self.app.select_facts(query, self.app.retriever.search(query, k=self.app.top_k))
        return self.app.messages(question, customer or self.customer, history, facts), facts

    def states_test_fact(self, text: str) -> bool:
        """Whether text states a key fact of a test question (policy answers must not teach them)."""
        from contoso_chat.evaluation.metrics import fact_found

        return any(fact_found(fact, text) for fact in self.test_key_facts)

    def leaks(self, messages: Sequence[Message]) -> bool:
        text = " ".join(m["content"] for m in messages).lower()
        return any(name.lower() in text for name in self.held_out_names)


def _shown(facts, text: str) -> bool:
    return any(text.lower() in f.text.lower() for f in facts)


# Each kind's share of the examples. The shares are quotas, not odds: kinds that fail often (the fact was not among
# those retrieval brought) would otherwise leave the declines, which never fail, a larger share than planned, and a
# model trained on 43 declines in 320 examples (13%) made the wrong decline decision on 40% of the dev questions,
# and one trained on 23 (7%) still declined 28 dev questions whose answer it was shown.
PLAN = {"fact": 24, "customer-fact": 14, "care": 10, "faq": 10, "price": 6, "policy": 6, "two-facts": 10,
        "follow-up": 10, "orders": 12, "missing-facts": 2, "not-sold": 1}
GIVE_UP_AFTER = 60


def make_examples(app: ContosoChat, count: int, seed: int = 42) -> list[Example]:
    """`count` examples of the kinds in the module docstring, in a fixed random order; none names a test product."""
    rng = random.Random(seed)
    held_out = test_products()
    dev = {p.id for p in records.products()} - held_out
    maker = ExampleMaker(app, held_out)
    rows = specs(dev)
    maker.faqs = faqs(dev)
    quota = {kind: math.ceil(count * weight / sum(PLAN.values())) for kind, weight in PLAN.items()}
    made: Counter = Counter()
    misses: Counter = Counter()  # attempts in a row that made nothing: a kind the data cannot fill is given up
    examples: list[Example] = []
    attempts = 0
    while len(examples) < count and attempts < count * 20:
        attempts += 1
        open_kinds = [k for k in PLAN if made[k] < quota[k] and misses[k] < GIVE_UP_AFTER] or \
            [k for k in PLAN if misses[k] < GIVE_UP_AFTER]
        if not open_kinds:
            break
        kind = rng.choices(open_kinds, weights=[PLAN[k] for k in open_kinds])[0]
        example = _make(kind, rng, rows, maker, app)
        if example and not maker.leaks(example.messages):
            examples.append(example)
            made[kind] += 1
            misses[kind] = 0
        else:
            misses[kind] += 1
    return examples


def _make(kind: str, rng: random.Random, rows: list[Spec], maker: ExampleMaker, app: ContosoChat) -> Example | None:
    spec = rng.choice(rows)
    name, attr = spec.product.name, spec.attribute.lower()
    if kind in ("fact", "customer-fact"):
        templates = {("fact", True): WEIGHT_QUESTIONS, ("fact", False): QUESTIONS,
                     ("customer-fact", True): CUSTOMER_WEIGHT_QUESTIONS,
                     ("customer-fact", False): CUSTOMER_QUESTIONS}[kind, attr == "weight"]
        question = rng.choice(templates).format(attr=attr, product=name)
        if kind == "customer-fact" and rng.random() < 0.4:
            question = rng.choice(SITUATIONS) + question
        messages, facts = maker.messages(question)
        if not _shown(facts, spec.fact):
            return None
        answer = rng.choice(WEIGHT_ANSWERS if attr == "weight" else ANSWERS).format(
            attr=attr, product=name, value=spec.value, fact=spec.fact, source=spec.product.source_id)
        return Example(kind, messages + [{"role": "assistant", "content": answer}], {spec.product.id})
    if kind == "care":
        product = spec.product
        question, words = rng.choice(CARE_QUESTIONS)
        messages, facts = maker.messages(question.format(product=product.name))
        prefix = f"{product.name}: "
        answer_fact = next((f for f in facts if f.source_id == product.source_id and f.text.startswith(prefix)
                            and any(w in f.text.lower() for w in words)), None)
        if answer_fact is None or maker.states_test_fact(answer_fact.text):
            return None
        answer = f"{answer_fact.text.removeprefix(prefix).rstrip()} [{product.source_id}]"
        return Example(kind, messages + [{"role": "assistant", "content": answer}], {product.id})
    if kind == "faq":  # the answer copies the FAQ answer's sentences retrieval showed, the first one among them
        faq = rng.choice(maker.faqs)
        prefix = f"{faq.product.name}: "
        messages, facts = maker.messages(in_customers_words(faq.question, faq.product.name, rng))
        sentences = [f.text.removeprefix(prefix).strip() for f in facts
                     if f.source_id == faq.product.source_id and f.text.startswith(prefix)
                     and f.text.removeprefix(prefix).strip() in faq.answer]
        sentences = sorted(dict.fromkeys(sentences), key=faq.answer.index)
        if not sentences or not faq.answer.startswith(sentences[0]) or maker.states_test_fact(" ".join(sentences)):
            return None
        answer = f"{' '.join(sentences)} [{faq.product.source_id}]"
        return Example(kind, messages + [{"role": "assistant", "content": answer}], {faq.product.id})
    if kind == "price":
        product = spec.product
        price = f"${product.price:,.2f}"
        messages, facts = maker.messages(rng.choice(PRICE_QUESTIONS).format(product=product.name))
        if not _shown(facts, price):
            return None
        answer = rng.choice(PRICE_ANSWERS).format(product=product.name, price=price, source=product.source_id)
        return Example(kind, messages + [{"role": "assistant", "content": answer}], {product.id})
    if kind == "policy":
        question, words = rng.choice(MEMBERSHIP_QUESTIONS)
        messages, facts = maker.messages(question)
        answer_fact = next((f for f in facts if f.source_id == MEMBERSHIP and words.lower() in f.text.lower()), None)
        if answer_fact is None or maker.states_test_fact(answer_fact.text):
            return None
        sentence = answer_fact.text.strip().removeprefix(maker.membership_title + ": ")
        answer = f"{sentence} [{MEMBERSHIP}]"
        return Example(kind, messages + [{"role": "assistant", "content": answer}])
    if kind == "two-facts":
        others = [r for r in rows if r.product.id == spec.product.id and r.attribute != spec.attribute]
        if not others:
            return None
        second = rng.choice(others)
        question = f"What are the {attr} and the {second.attribute.lower()} of the {name}?"
        messages, facts = maker.messages(question)
        if not (_shown(facts, spec.fact) and _shown(facts, second.fact)):
            return None
        answer = f"{spec.fact} [{spec.product.source_id}]. {second.fact} [{second.product.source_id}]."
        return Example(kind, messages + [{"role": "assistant", "content": answer}], {spec.product.id})
    if kind == "follow-up":
        history = [{"role": "user", "content": f"Tell me about the {name}."},
                   {"role": "assistant", "content": f"The {name} is in our {spec.product.category} range "
                                                    f"[{spec.product.source_id}]."}]
        question = rng.choice(FOLLOW_UPS).format(attr=attr)
        messages, facts = maker.messages(question, history)
        if not _shown(facts, spec.fact):
            return None
        answer = f"{spec.fact} [{spec.product.source_id}]."
        return Example(kind, messages + [{"role": "assistant", "content": answer}], {spec.product.id})
    if kind == "orders":
        return _order_example(rng, rows, maker)
    if kind == "missing-facts":
        others = [r for r in rows if r.product.category != spec.product.category]
        other = rng.choice(others)
        question = rng.choice(QUESTIONS).format(attr=attr, product=name)
        decoy = standalone_query(rng.choice(QUESTIONS).format(attr=other.attribute.lower(), product=other.product.name), [])
        facts = [f for f in app.select_facts(decoy, app.retriever.search(decoy, k=app.top_k))
                 if name.lower() not in f.text.lower()]
        messages = app.messages(question, maker.customer, [], facts)
        return Example("decline", messages + [{"role": "assistant", "content": DECLINE}], {spec.product.id})
    fake = rng.choice(NOT_SOLD)
    question = rng.choice(("How much does the {p} cost?", "What is the weight of the {p}?",
                           "Tell me about the {p}.")).format(p=fake)
    messages, _ = maker.messages(question)
    return Example("decline", messages + [{"role": "assistant", "content": DECLINE}])


# Order questions ask what a customer's record answers, naming the product as the store does or in the customer's
# own word for it ("my stove", "the tent I bought"); the answer copies the order line shown.
ORDER_QUESTIONS = {
    "when": ("When did I buy my {p}?", "when did my {p} order go through?", "What date did I order the {p}?"),
    "paid": ("How much did I pay for my {p}?", "what did the {p} cost me?", "How much was my {p} order?"),
    "did": ("Did I order the {p}?", "can you check if i bought the {p} from you?"),
    "count": ("How many {p} did I order?", "how many of the {p} did i get from you?",
              "I can't remember if I bought one {p} or more. How many did I order?"),
    "which": ("Which {p} did I buy from you?", "what's the name of the {p} i bought? can't remember",
              "A friend wants the same {p} I have. Which one did I get from you?"),
    "when-warranty": ("When did I order the {p}, and what is its warranty?",
                      "when did i buy my {p} and how long is the warranty on it?",
                      "The {p} I got from you has stopped working. When did I order it, and how long is its warranty?",
                      "something is wrong with my {p}. when did i buy it and how long does the warranty last?"),
    # only asked of prompts that show order ids (the matched-orders form): the other form has none to copy
    "number": ("What is the order number of my {p} purchase?", "can u find the order # for the {p} i bought?",
               "I need the order number for my {p} to fill in a form, and I lost the email. What is it?"),
}
WARRANTY_TERM = re.compile(r"\bwarranty\b.*\b\d+ years?\b", re.IGNORECASE)  # "... Limited Warranty for 3 years"
TRAINING_NAMES = ("Rowan", "Imke", "Tomasz", "Priya", "Kofi", "Lucia", "Bram", "Yuki", "Sione", "Marta")


def customers_word(product: records.Product) -> str:
    """What a customer calls a product they bought: its kind, not its name ("stove", "sleeping bag")."""
    words = product.name.lower().split()
    return " ".join(words[-2:]) if words[-2:] == ["sleeping", "bag"] else words[-1]


def training_customer(rng: random.Random, product_ids: Sequence[int], number: int) -> records.Customer:
    """A made-up customer whose orders hold dev products only: one to five lines, sometimes two on one day, a
    quantity above one now and then; order ids outside the store's range so none is a real customer's."""
    picked = rng.sample(sorted(product_ids), rng.randint(1, 5))
    days: list[str] = []
    for _ in picked:
        days.append(days[-1] if days and rng.random() < 0.3 else
                    f"{rng.randint(2024, 2026)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}")
    orders = []
    for i, (product_id, day) in enumerate(zip(picked, sorted(days))):
        product, quantity = records.product_by_id(product_id), rng.choice((1, 1, 1, 2, 2, 3))
        orders.append(records.OrderLine(order_id=f"ORD-{90000 + number * 10 + i}", product_id=product_id,
                                        quantity=quantity, unit_price=product.price,
                                        total=round(product.price * quantity, 2), date=day))
    return records.Customer.model_validate({
        **records.customers()[0].model_dump(), "id": f"C{9000 + number}", "first_name": rng.choice(TRAINING_NAMES),
        "membership": rng.choice(("Base", "Gold", "Platinum")), "orders": [o.model_dump() for o in orders]})


def _by_name(name: str) -> records.Product:
    return next(p for p in records.products() if p.name == name)


def _order_example(rng: random.Random, rows: list[Spec], maker: ExampleMaker) -> Example | None:
    """A question about a made-up customer's orders, answered from the order line the prompt shows. The facts are
    the ones retrieval brings for the product's own name, so no test product enters the prompt."""
    dev = sorted({row.product.id for row in rows})
    customer = training_customer(rng, dev, rng.randrange(1000))
    lines = order_lines(customer)
    line = rng.choice(lines)
    product = _by_name(line["product"])
    # Half the prompts list every order without ids (the shipped form), half only the lines the question is about,
    # each with its order id (the matched-orders lever), so the model can be served either way.
    app = maker.matched_app if rng.random() < 0.5 else maker.app
    asked = rng.choice([shape for shape in ORDER_QUESTIONS if shape != "number" or app.matched_orders])
    word = customers_word(product)
    unique_word = sum(customers_word(_by_name(x["product"])) == word for x in lines) == 1
    if asked == "which" and not unique_word:
        return None
    own_word = asked == "which" or (unique_word and rng.random() < 0.5)
    question = rng.choice(ORDER_QUESTIONS[asked]).format(p=word if own_word else line["product"])
    query = standalone_query(question.replace(word, line["product"]) if own_word else question, [])
    facts = app.select_facts(query, app.retriever.search(query, k=app.top_k))
    messages = app.messages(question, customer, [], facts)
    if f'{line["date"]}: {line["quantity"]} x {line["product"]}' not in messages[0]["content"]:
        return None  # the app showed no orders for this wording
    answer = {"when": f"You bought the {line['product']} on {line['date']}.",
              "paid": f"You paid {line['total']} for the {line['product']} on {line['date']}.",
              "did": f"Yes, you ordered {line['quantity']} x {line['product']} on {line['date']}.",
              "count": f"You ordered {line['quantity']} x {line['product']} on {line['date']}.",
              "which": f"You bought the {line['product']} on {line['date']}.",
              "number": f"Your {line['product']} order of {line['date']} is order {line['order_id']}."}.get(asked)
    if asked == "when-warranty":  # the date from the order line, then the product's warranty term as shown
        term = next((f.text for f in facts if f.source_id == product.source_id and WARRANTY_TERM.search(f.text)), None)
        if term is None:
            return None
        answer = (f"You bought the {line['product']} on {line['date']}. "
                  f"{term.removeprefix(product.name + ': ').strip().rstrip('.')} [{product.source_id}].")
    return Example("orders", messages + [{"role": "assistant", "content": answer}], {product.id})
