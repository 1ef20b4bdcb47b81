"""The worker's poster: each part of a post is recorded as it is out, and what the post
said is recorded in the same write as its last part, so that a work item handled again
neither posts nor records anything twice."""

from __future__ import annotations

from harness import RecordingAdapter
from sqlalchemy.ext.asyncio import AsyncConnection

from corral.agents.conversation import Place, Recorder, Reply
from corral.bot.posting import LedgerPoster
from corral.storage.keys import ThreadKey
from corral.storage.store import Storage

PLACE = Place("test", "C1", "1700000000.000100")


def _recorder(storage: Storage, calls: list[bool]) -> Recorder:
    async def record(on: AsyncConnection | None) -> None:
        calls.append(on is not None)
        await storage.transcript.append(PLACE.key, "Done.", agent="owl", on=on)

    return record


async def _said(storage: Storage, key: ThreadKey) -> list[str]:
    return [e.text for e in await storage.transcript.history(key) if e.agent]


async def test_the_last_part_and_what_was_said_are_one_write(storage: Storage) -> None:
    adapter = RecordingAdapter()
    calls: list[bool] = []
    poster = LedgerPoster(adapter, storage.posts, "m-1")
    await poster(PLACE, Reply("owl", "Done."), record=_recorder(storage, calls))
    assert [r.text for _, r in adapter.posts] == ["Done."]
    # Recorded once, in the transaction that recorded the part.
    assert calls == [True]
    assert await storage.posts.posted("m-1") == {0: 1}
    assert await _said(storage, PLACE.key) == ["Done."]


async def test_a_post_that_was_out_is_neither_posted_nor_recorded_again(
    storage: Storage,
) -> None:
    first = RecordingAdapter()
    await LedgerPoster(first, storage.posts, "m-2")(
        PLACE, Reply("owl", "Done."), record=_recorder(storage, [])
    )
    # The item handled again after a crash: the same post, as the same number.
    again = RecordingAdapter()
    calls: list[bool] = []
    retry = LedgerPoster(again, storage.posts, "m-2", await storage.posts.posted("m-2"))
    await retry(PLACE, Reply("owl", "Done."), record=_recorder(storage, calls))
    assert again.posts == [] and calls == []
    assert await _said(storage, PLACE.key) == ["Done."]


class Silent(RecordingAdapter):
    """A platform that takes no part of any reply."""

    async def post(self, place: Place, reply: Reply, **_: object) -> list[str]:  # type: ignore[override]
        return []


async def test_a_post_without_parts_is_still_recorded(storage: Storage) -> None:
    """Nothing of the reply was out before and the platform took no part of it now:
    what was said is recorded on its own."""
    calls: list[bool] = []
    poster = LedgerPoster(Silent(), storage.posts, "m-3")
    await poster(PLACE, Reply("owl", "Done."), record=_recorder(storage, calls))
    assert calls == [False]
    assert await _said(storage, PLACE.key) == ["Done."]
