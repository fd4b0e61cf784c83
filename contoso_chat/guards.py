"""Input and output guards: checks that run before any model call and on every answer.

Input: a clear `InputError` for an empty or over-long question, too much or malformed history.
Documents: invisible characters that can hide instructions are removed before a prompt is built.
Output: no other customer's details, no system-prompt canary, no links or images to other sites.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

MAX_QUESTION_CHARS = 1000
MAX_HISTORY_TURNS = 10
MAX_TURN_CHARS = 2000
HISTORY_ROLES = ("user", "assistant")
SYSTEM_PROMPT_MARKERS = ("CANARY-QX7-TAMBOURINE", "internal instructions")
ALLOWED_LINK_HOSTS: tuple[str, ...] = ()  # no links at all: a small model invents plausible URLs
WITHHELD_ANSWER = (
    "I'm sorry, I can't share that. I can help with Contoso Outdoors products, store policies and "
    "your own orders."
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


def check_output(answer: str, customer_id: str, private_details: Mapping[str, Sequence[str]]) -> OutputCheck:
    """Withhold answers that contain another customer's details or the system prompt; strip links."""
    reasons: list[str] = []
    clean = strip_invisible(answer)
    lowered = clean.lower()
    for other_id, details in private_details.items():
        if other_id == customer_id:
            continue
        if any(detail and detail.lower() in lowered for detail in details):
            reasons.append("other-customer-data")
            break
    if any(marker.lower() in lowered for marker in SYSTEM_PROMPT_MARKERS):
        reasons.append("system-prompt")
    if reasons:
        return OutputCheck(WITHHELD_ANSWER, True, tuple(reasons))
    clean, removed = remove_links(clean)
    if removed:
        reasons.append("links-removed")
    return OutputCheck(clean.strip(), False, tuple(reasons))


def leaked(text: str, needles: Iterable[str]) -> list[str]:
    """The needles found in text, case-insensitively (for red-team scoring)."""
    lowered = text.lower()
    return [n for n in needles if n and n.lower() in lowered]
