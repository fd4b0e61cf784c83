"""Split manuals, policies and catalog rows into searchable chunks that keep their source.

Manuals and policies are split at each `##` section; a section longer than `max_chars` is cut
into windows that overlap by `overlap_chars`, at line boundaries, so a fact near a cut is whole
in at least one chunk. Every chunk starts with its document title and section, which helps both
keyword and vector search find it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from contoso_chat import records
from contoso_chat.guards import sanitize_document

MAX_CHARS = 1200
OVERLAP_CHARS = 200


@dataclass(frozen=True)
class Chunk:
    """One searchable piece of a document."""

    id: str
    source_id: str
    kind: str
    title: str
    section: str
    text: str


def slug(text: str) -> str:
    """lower-case-words-joined-by-hyphens."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def split_sections(markdown: str) -> tuple[str, list[tuple[str, str]]]:
    """The H1 title and a list of (heading, body) for each `##` section (text before the first is 'About')."""
    title = ""
    sections: list[tuple[str, list[str]]] = [("About", [])]
    for line in markdown.splitlines():
        if line.startswith("# ") and not title:
            title = line[2:].strip()
        elif line.startswith("## "):
            sections.append((line[3:].strip(), []))
        else:
            sections[-1][1].append(line)
    cleaned = [(heading, "\n".join(lines).strip()) for heading, lines in sections]
    return title, [(heading, body) for heading, body in cleaned if body]


def windows(body: str, max_chars: int | None = None, overlap_chars: int | None = None) -> list[str]:
    """Cut a body into windows of at most max_chars at line ends, each starting with the previous window's tail."""
    max_chars = max_chars or MAX_CHARS
    overlap_chars = OVERLAP_CHARS if overlap_chars is None else overlap_chars
    if len(body) <= max_chars:
        return [body]
    lines = body.splitlines()
    pieces: list[str] = []
    current: list[str] = []
    for line in lines:
        if current and len("\n".join(current + [line])) > max_chars:
            pieces.append("\n".join(current))
            tail: list[str] = []
            for previous in reversed(current):
                if len("\n".join([previous] + tail)) > overlap_chars:
                    break
                tail.insert(0, previous)
            current = tail
        current.append(line)
    if current:
        pieces.append("\n".join(current))
    return pieces


def chunk_document(source_id: str, kind: str, markdown: str,
                   max_chars: int | None = None, overlap_chars: int | None = None) -> list[Chunk]:
    """Chunks of one Markdown document (sanitized first), each headed by its title and section."""
    title, sections = split_sections(sanitize_document(markdown))
    chunks = []
    for heading, body in sections:
        for n, window in enumerate(windows(body, max_chars, overlap_chars)):
            chunks.append(Chunk(
                id=f"{source_id}#{slug(heading)}-{n}", source_id=source_id, kind=kind, title=title, section=heading,
                text=f"{title} - {heading}\n{window}",
            ))
    return chunks


def catalog_chunk(product: records.Product) -> Chunk:
    """One chunk for a catalog row."""
    text = (f"{product.name} - Catalog\n{product.name} is in the {product.category} category, made by {product.brand}, "
            f"price ${product.price:.2f}. {product.description}")
    return Chunk(id=f"{product.source_id}#catalog-0", source_id=product.source_id, kind="catalog",
                 title=product.name, section="Catalog", text=text)


def corpus_chunks(root: Path | None = None, extra_documents: dict[str, Path] | None = None) -> list[Chunk]:
    """Every chunk of the default corpus (catalog rows, manuals, policies), plus any extra documents."""
    chunks = [catalog_chunk(p) for p in records.products(root)]
    for product_id, path in records.manual_paths(root).items():
        chunks += chunk_document(f"product-{product_id}", "manual", path.read_text(encoding="utf-8"))
    for source_id, path in records.policy_paths(root).items():
        chunks += chunk_document(source_id, "policy", path.read_text(encoding="utf-8"))
    for source_id, path in (extra_documents or {}).items():
        chunks += chunk_document(source_id, "extra", path.read_text(encoding="utf-8"))
    return chunks
