"""Input and output guards: checks that run before any model call and on every answer.

Input: a clear `InputError` for an empty or over-long question, too much or malformed history.
Documents: invisible characters that can hide instructions are removed before a prompt is built.
Output: an answer is withheld when it carries another customer's details (a phone number in any
format included), a personal record the customer may not see (an e-mail, phone, street address or
order id that is not theirs or the store's), the canary or any fragment of it, or a passage of the
confidential rules; an answer that claims an action the read-only assistant cannot take is replaced
by what it can do; links and images are stripped.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from difflib import SequenceMatcher
from typing import Mapping, Sequence

from contoso_chat.prompts import canary

MAX_QUESTION_CHARS = 1000
MAX_HISTORY_TURNS = 10
MAX_TURN_CHARS = 2000
HISTORY_ROLES = ("user", "assistant")
ALLOWED_LINK_HOSTS: tuple[str, ...] = ()  # no links at all: a small model invents plausible URLs
STORE_EMAIL = "support@contoso-outdoors.example"
STORE_PHONE_DIGITS = "18005550142"
CANARY_FRAGMENT = 6  # this many characters of the canary in a row are a leak
RULES_ECHO_CHARS = 32  # this long a passage of the confidential rules, copied, is a leak
WITHHELD_ANSWER = (
    "I'm sorry, I can't share that. I can help with Contoso Outdoors products, store policies and "
    "your own orders."
)
READ_ONLY_ANSWER = (
    "I can't do that myself: I can only look things up. Human support can help at "
    "support@contoso-outdoors.example or 1-800-555-0142 (Monday-Friday 8 am-6 pm Eastern)."
)

IMAGE = re.compile(r"!\[[^\]]*\](?:\([^)]*\)?)?")  # a cut-off answer may end inside one
MARKDOWN_LINK = re.compile(r"\[([^\]]*)\]\(\s*<?(?:https?:)?//[^)]*\)?")
URL = re.compile(r"(?i)\b(?:https?://|www\.)[^\s<>()\"']*")
BARE_DOMAIN = re.compile(r"(?i)(?<![@\w.-])(?:[a-z0-9-]+\.)+(?:com|net|org|io|co|shop|store|example)(?:/[^\s<>()\"']*)?\b")
HTML_TAG = re.compile(r"(?i)<\s*(img|a|iframe|script)\b[^>]*>")


class InputError(ValueError):
    """A request the assistant will not send to the model; `field` names the part that is wrong."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def check_input(question: object, chat_history: object, customer_id: object) -> tuple[str, list[dict]]:
    """Validate a request and return the cleaned question and history, or raise InputError."""
    if not isinstance(customer_id, str) or not customer_id.strip():
        raise InputError("customer_id", "A signed-in customer id is required.")
    if not isinstance(question, str):
        raise InputError("question", "The question must be text.")
    question = strip_invisible(question).strip()
    if _has_surrogates(question):
        raise InputError("question", "The question contains characters that are not valid text; type it again.")
    if not question:
        raise InputError("question", "The question is empty; type a question about Contoso Outdoors.")
    if len(question) > MAX_QUESTION_CHARS:
        raise InputError("question", f"The question is {len(question)} characters long; the limit is "
                                     f"{MAX_QUESTION_CHARS}. Shorten it or split it into several questions.")
    if chat_history is None:
        chat_history = []
    if not isinstance(chat_history, (list, tuple)):
        raise InputError("chat_history", "chat_history must be a list of {role, content} turns.")
    if len(chat_history) > MAX_HISTORY_TURNS:
        raise InputError("chat_history", f"chat_history has {len(chat_history)} turns; the limit is "
                                         f"{MAX_HISTORY_TURNS}. Send only the most recent turns.")
    turns = []
    for number, turn in enumerate(chat_history, start=1):
        if not isinstance(turn, Mapping) or not isinstance(turn.get("content"), str):
            raise InputError("chat_history", f"Turn {number} of chat_history needs a 'role' and a text 'content'.")
        if turn.get("role") not in HISTORY_ROLES:
            raise InputError("chat_history", f"Turn {number} of chat_history has role {str(turn.get('role'))[:20]!r}; "
                                             "only 'user' and 'assistant' turns may be sent.")
        if _has_surrogates(turn["content"]):
            raise InputError("chat_history", f"Turn {number} of chat_history contains characters that are not valid text.")
        if len(turn["content"]) > MAX_TURN_CHARS:
            raise InputError("chat_history", f"Turn {number} of chat_history is longer than {MAX_TURN_CHARS} characters.")
        turns.append({"role": turn["role"], "content": strip_invisible(turn["content"])})
    return question, turns


def _has_surrogates(text: str) -> bool:
    """True for text with lone UTF-16 surrogates (valid in JSON escapes, but not text any model can take)."""
    return any("\ud800" <= ch <= "\udfff" for ch in text)


HTML_COMMENT = re.compile(r"<!--.*?-->", re.S)


def sanitize_document(text: str) -> str:
    """Documents before indexing: no hidden text, HTML comments, images or links to other sites."""
    text = HTML_COMMENT.sub("", strip_invisible(text))
    return remove_links(text)[0]


def strip_invisible(text: str) -> str:
    """Remove format characters (zero-width spaces, bidi controls, Unicode tag characters) that can hide text."""
    return "".join(ch for ch in text if unicodedata.category(ch) != "Cf")


def _host_allowed(url: str) -> bool:
    host = re.sub(r"(?i)^(https?:)?//|^www\.", "", url).split("/")[0].split("?")[0].lower()
    return any(host == allowed or host.endswith("." + allowed) for allowed in ALLOWED_LINK_HOSTS)


def remove_links(text: str) -> tuple[str, int]:
    """Drop images, HTML tags and links to other sites; return the text and how many were removed."""
    removed = 0

    def drop(match: re.Match) -> str:
        nonlocal removed
        removed += 1
        return ""

    def keep_label(match: re.Match) -> str:
        nonlocal removed
        removed += 1
        return match.group(1)

    def drop_url(match: re.Match) -> str:
        nonlocal removed
        if _host_allowed(match.group(0)):
            return match.group(0)
        removed += 1
        return "[link removed]"

    text = IMAGE.sub(drop, text)
    text = HTML_TAG.sub(drop, text)
    text = MARKDOWN_LINK.sub(keep_label, text)
    text = URL.sub(drop_url, text)
    text = BARE_DOMAIN.sub(drop_url, text)
    return text, removed


@dataclass(frozen=True)
class OutputCheck:
    """The answer after the output guard, and what the guard did."""

    answer: str
    withheld: bool
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class OutputPolicy:
    """What the output guard knows about the turn: who is signed in, what identifies everyone else,
    which order ids are the customer's own, and the confidential rules of the system prompt."""

    customer_id: str
    private_details: Mapping[str, Sequence[str]]
    own_order_ids: frozenset[str] = frozenset()
    confidential_rules: str = ""


_EMAIL_LIKE = re.compile(r"\b[^\s@<>()\[\]]+@[^\s@<>()\[\]]+\.[a-z]{2,}\b", re.IGNORECASE)
_DIGIT_RUN = re.compile(r"\+?\(?\d[\d\s().-]{8,}\d")
_STREET_LIKE = re.compile(r"\b\d+\s+[A-Z][a-zA-Z]+(?:\s+[A-Z][a-zA-Z]+)*\s+(?:Street|Road|Avenue|Lane|Drive|Way|Court|"
                          r"Boulevard|Place|Hollow|Terrace|Trail|St|Rd|Ave|Ln|Dr)\b")
_ORDER_ID = re.compile(r"\bORD\W?(\d{5})\b", re.IGNORECASE)
_ACTION_STEMS = ("cancel", "refund", "issu", "process", "credit", "chang", "updat", "rerout", "appli", "add",
                 "upgrad", "delet", "remov", "start", "initiat", "fil", "submitt", "extend", "email", "waiv", "reset")
_DONE_PHRASE = re.compile(r"\b(?:has|have|had)\s+(?:now\s+|just\s+|successfully\s+)?been\s+([a-z]+ed)\b"
                          r"|\bi(?:'ve|\s+have)?\s+(?:now\s+|just\s+|successfully\s+)?([a-z]+ed)\s+(?:your|the|it|a)\b"
                          r"|\byou(?:'re|\s+are)\s+now\s+(?:a\s+)?(?:gold|platinum)\b"
                          r"|\b(?:here(?:'s|\s+is)|use)\s+(?:your|the|this)\s+(?:discount\s+|promo\s+)?code\b", re.IGNORECASE)
_DENIAL = re.compile(r"\b(?:not|never|cannot|can't|unable|won't)\b", re.IGNORECASE)


def _digits_only(text: str) -> str:
    return re.sub(r"\D", "", text)


def _compact(text: str) -> str:
    return re.sub(r"[^A-Z0-9]", "", text.upper())


def canary_fragments(token: str, size: int = CANARY_FRAGMENT) -> set[str]:
    """Every run of `size` characters of the canary, without its dashes."""
    compact = _compact(token)
    return {compact[i:i + size] for i in range(len(compact) - size + 1)} if len(compact) >= size else {compact}


def echoes_rules(answer: str, rules: str, min_chars: int = RULES_ECHO_CHARS) -> bool:
    """True when the answer copies a passage of at least `min_chars` characters of the rules."""
    if not rules:
        return False
    norm = lambda text: re.sub(r"\s+", " ", re.sub(r"[^a-z0-9 ]", " ", text.lower())).strip()  # noqa: E731
    a, b = norm(rules), norm(answer)
    match = SequenceMatcher(None, a, b, autojunk=False).find_longest_match(0, len(a), 0, len(b))
    return match.size >= min_chars


def other_customer_data(answer: str, policy: OutputPolicy) -> bool:
    """Another customer's identifying strings in the answer; phone numbers compared by their digits."""
    lowered, digits = answer.lower(), _digits_only(answer)
    for other_id, details in policy.private_details.items():
        if other_id == policy.customer_id:
            continue
        for detail in details:
            if not detail:
                continue
            detail_digits = _digits_only(detail)
            if len(detail_digits) >= 10 and detail_digits[-10:] in digits:
                return True
            if detail.lower() in lowered:
                return True
    return False


def personal_records(answer: str, policy: OutputPolicy) -> list[str]:
    """E-mails, phone numbers, street addresses and order ids in the answer that are neither the store's nor
    the signed-in customer's own (whether real or made up, the customer may not see them)."""
    found = [m for m in _EMAIL_LIKE.findall(answer) if m.lower() != STORE_EMAIL]
    for run in _DIGIT_RUN.findall(answer):
        digits = _digits_only(run)
        if 10 <= len(digits) <= 11 and digits[-10:] != STORE_PHONE_DIGITS[-10:]:
            found.append(run)
    found += _STREET_LIKE.findall(answer)
    own = {_digits_only(order_id) for order_id in policy.own_order_ids}
    found += [f"ORD-{n}" for n in _ORDER_ID.findall(answer) if n not in own]
    return found


def claims_an_action(answer: str) -> bool:
    """True when a sentence says something was cancelled, refunded, changed... by the assistant."""
    for sentence in re.split(r"(?<=[.!?])\s+|\n", answer):
        if _DENIAL.search(sentence):
            continue
        match = _DONE_PHRASE.search(sentence)
        if not match:
            continue
        verb = (match.group(1) or match.group(2) or "").lower()
        if not verb or verb.startswith(_ACTION_STEMS):
            return True
    return False


def check_output(answer: str, policy: OutputPolicy) -> OutputCheck:
    """Withhold leaks and personal records, replace claimed actions, strip links (see the module docstring)."""
    reasons: list[str] = []
    clean = strip_invisible(answer)
    if other_customer_data(clean, policy):
        reasons.append("other-customer-data")
    if personal_records(remove_links(clean)[0], policy):  # digits inside a link that is stripped anyway are no record
        reasons.append("personal-record")
    secret = canary(policy.confidential_rules)
    if secret and any(fragment in _compact(clean) for fragment in canary_fragments(secret)):
        reasons.append("system-prompt")
    elif echoes_rules(clean, policy.confidential_rules.replace(secret, "")):
        reasons.append("system-prompt")
    if reasons:
        return OutputCheck(WITHHELD_ANSWER, True, tuple(reasons))
    if claims_an_action(clean):
        return OutputCheck(READ_ONLY_ANSWER, True, ("action-claim",))
    clean, removed = remove_links(clean)
    if removed:
        reasons.append("links-removed")
    return OutputCheck(clean.strip(), False, tuple(reasons))


def prompts_canary(rules: str) -> str:
    """The canary in the rules text (see contoso_chat.prompts.canary)."""
    from contoso_chat.prompts import canary

    return canary(rules)
