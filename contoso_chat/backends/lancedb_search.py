"""The local search index: LanceDB on disk under build/index, with vector, BM25 full-text and hybrid search.

Vector search uses embeddings from the configured backend; hybrid fuses the vector and keyword
results by reciprocal rank (LanceDB's RRF reranker). The index is rebuilt only when the data,
the embedding model or the chunker changed (a manifest records what it was built from).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import asdict
from pathlib import Path
from typing import Sequence

import numpy as np

from contoso_chat import chunking, guards
from contoso_chat.backends.embeddings import embedder as make_embedder
from contoso_chat.backends.search_types import Embedder, Hit, Mode, keyword_query
from contoso_chat.backends.settings import Settings
from contoso_chat.chunking import Chunk, corpus_chunks
from contoso_chat.paths import build_dir, data_dir

CANDIDATES = 20  # results each of vector and keyword search bring to the fusion


class LanceRetriever:
    """LanceDB table with a vector column and a full-text index."""

    def __init__(self, folder: Path, embedder: Embedder, table: str = "chunks") -> None:
        import lancedb

        self.folder = folder
        self.embedder = embedder
        self.table_name = table
        self._db = lancedb.connect(str(folder))
        self._table = self._db.open_table(table) if table in self._db.table_names() else None

    def build(self, chunks: Sequence[Chunk]) -> int:
        """Replace the table's contents with these chunks (never appends); return the row count."""
        from lancedb.index import FTS

        vectors = self.embedder.embed([c.text for c in chunks])
        rows = [{**asdict(c), "vector": v} for c, v in zip(chunks, vectors)]
        exists = self.table_name in self._db.table_names()  # "overwrite" of a missing table logs a warning
        self._table = self._db.create_table(self.table_name, data=rows, mode="overwrite" if exists else "create")
        self._table.create_index("text", config=FTS(), replace=True)
        return self._table.count_rows()

    def count(self) -> int:
        """Rows in the table."""
        return 0 if self._table is None else self._table.count_rows()

    def search(self, query: str, k: int = 5, mode: Mode = "hybrid") -> list[Hit]:
        """Top-k chunks for the query by keyword (BM25), vector (cosine) or hybrid (RRF of both)."""
        from lancedb.rerankers import RRFReranker

        if self._table is None:
            raise RuntimeError("The search index is empty; build it with ensure_index() first.")
        if mode == "keyword":
            rows = self._table.search(keyword_query(query), query_type="fts").limit(k).to_list()
            return [self._hit(r, r["_score"], None) for r in rows]
        vector = self.embedder.embed([query])[0]
        if mode == "vector":
            rows = self._table.search(vector).distance_type("cosine").limit(k).to_list()
            return [self._hit(r, 1 - r["_distance"], 1 - r["_distance"]) for r in rows]
        rows = (self._table.search(query_type="hybrid").vector(vector).text(keyword_query(query))
                .rerank(RRFReranker(return_score="all")).limit(max(k, CANDIDATES)).to_list())
        hits = [self._hit(r, r["_relevance_score"], self._cosine(r, vector)) for r in rows]
        return hits[:k]

    @staticmethod
    def _cosine(row: dict, vector: list[float]) -> float:
        return float(np.dot(np.asarray(row["vector"], dtype=np.float32), np.asarray(vector, dtype=np.float32)))

    @staticmethod
    def _hit(row: dict, score: float, similarity: float | None) -> Hit:
        return Hit(id=row["id"], source_id=row["source_id"], kind=row["kind"], title=row["title"],
                   section=row["section"], text=row["text"], score=float(score), similarity=similarity)


def data_fingerprint(root: Path | None = None, extra: dict[str, Path] | None = None) -> str:
    """A hash of every file that goes into the index, so a changed file triggers a rebuild."""
    root = root or data_dir()
    digest = hashlib.sha256()
    files = sorted([*(root / "products").rglob("*.*"), *(root / "policies").glob("*.md"), *(extra or {}).values()])
    for path in files:
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def local_index(settings: Settings, folder: Path | None = None, extra: dict[str, Path] | None = None,
                rebuild: bool = False, log=print, root: Path | None = None) -> LanceRetriever:
    """The local LanceDB index of the data set in `root` (default data/), built if missing or out of date."""
    folder = folder or build_dir() / "index"
    embedder = make_embedder(settings)
    manifest_path = folder / "manifest.json"
    chunker = hashlib.sha256(b"".join(Path(m.__file__).read_bytes() for m in (chunking, guards))).hexdigest()[:12]
    wanted = {"data": data_fingerprint(root, extra=extra), "embedder": embedder.name, "chunker": chunker,
              "chunk_chars": [chunking.MAX_CHARS, chunking.OVERLAP_CHARS]}
    if not rebuild and manifest_path.exists() and json.loads(manifest_path.read_text()).get("key") == wanted:
        retriever = LanceRetriever(folder, embedder)
        if retriever.count():
            return retriever
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    chunks = corpus_chunks(root, extra_documents=extra)
    log(f"Building the search index: {len(chunks)} chunks, embeddings by {embedder.name} ...")
    retriever = LanceRetriever(folder, embedder)
    rows = retriever.build(chunks)
    manifest_path.write_text(json.dumps({"key": wanted, "rows": rows}))
    return retriever
