"""What a platform sends is stored whatever it holds: NUL characters (which PostgreSQL's
text cannot hold), lone surrogates (which no UTF-8 encoder takes) and ids longer than
their columns, on SQLite and on PostgreSQL; then the same, fuzzed."""

from __future__ import annotations

import uuid

from fuzz_strategies import outside_text
from hypothesis import given
from redis.asyncio import Redis
from test_dedupe import REDIS_URL

from corral.storage.dedupe import RedisDelivered, delivery_keys
from corral.storage.inbox import NewInbound
from corral.storage.keys import ThreadKey
from corral.storage.storable import fit, storable_text
from corral.storage.store import Storage

LONG = "U" + "x" * 299


def inbound(event_id: str, **kw: str) -> NewInbound:
    fields = {
        "platform": "slack",
        "channel": "C1",
        "message_id": event_id,
        "thread": "1700000000.000100",
        "user": "U1",
        "text": "hello team",
    } | kw
    return NewInbound(event_id=event_id, payload={"to_app": True}, **fields)


def test_storable_text_drops_nul_and_replaces_lone_surrogates() -> None:
    assert storable_text("a\x00b") == "ab"
    assert storable_text("a\ud800b") == "a\ufffdb"
    assert storable_text("héllo 🦘") == "héllo 🦘"


def test_a_long_id_is_cut_with_a_hash_of_the_whole_and_stays_unique() -> None:
    first, second = fit("x" * 250 + "1", 200), fit("x" * 250 + "2", 200)
    assert len(first) == len(second) == 200 and first != second
    assert fit(first, 200) == first
    assert fit("short", 200) == "short"


async def test_a_message_with_nul_and_surrogates_is_stored_and_read_back(
    storage: Storage,
) -> None:
    stored = await storage.inbox.add(inbound("Ev1", text="look\x00 at \ud83d this"))
    assert stored is not None
    record = await storage.inbox.get(stored)
    assert record is not None and record.text == "look at \ufffd this"


async def test_ids_longer_than_their_columns_are_stored_once_and_kept_apart(
    storage: Storage,
) -> None:
    # Two deliveries whose long ids share their first 200 characters are two messages;
    # the same delivery again is a duplicate.
    one = await storage.inbox.add(inbound(LONG + "a", user=LONG, channel=LONG, thread=LONG))
    two = await storage.inbox.add(inbound(LONG + "b", user=LONG, channel=LONG, thread=LONG))
    again = await storage.inbox.add(inbound(LONG + "a", user=LONG, channel=LONG, thread=LONG))
    assert one is not None and two is not None and one != two and again is None
    record = await storage.inbox.get(one)
    assert record is not None and record.user == fit(LONG, 200)


async def test_transcript_threads_and_memories_take_what_the_inbox_took(
    storage: Storage,
) -> None:
    key = ThreadKey("slack", LONG, LONG + "\x00")
    await storage.transcript.append(key, "said \x00 this", user=LONG, owner="beaver")
    (entry,) = await storage.transcript.history(key)
    assert entry.text == "said  this"
    # The long key finds its thread again, however often it is fitted.
    assert await storage.threads.owner(key) == "beaver"
    memory, _ = await storage.memory.add(
        "deploys \x00 on fridays \udc80", scope="team", author=LONG, channel=LONG
    )
    assert memory.text == "deploys  on fridays \ufffd"
    found = await storage.memory.search("fridays \x00 \udc80")
    assert [m.id for m in found] == [memory.id]


@given(text=outside_text(), ident=outside_text(max_size=400))
async def test_fuzz_anything_a_platform_sends_is_stored_and_found_again(
    storage: Storage, text: str, ident: str
) -> None:
    event_id = uuid.uuid4().hex
    stored = await storage.inbox.add(
        inbound(event_id, text=text, user=ident, channel=ident, thread=ident)
    )
    assert stored is not None
    record = await storage.inbox.get(stored)
    assert record is not None and record.text == storable_text(text)
    key = ThreadKey("slack", ident, ident)
    await storage.transcript.append(key, text, user=ident, owner="beaver")
    assert (await storage.transcript.history(key))[-1].text == storable_text(text)
    assert await storage.threads.owner(key) == "beaver"
    await storage.memory.search(text)


async def test_a_delivery_with_a_lone_surrogate_is_remembered_in_redis() -> None:
    # Redis keys are UTF-8: a lone surrogate in an id failed the call, and Redis was then
    # left alone for every message for a while.
    client = Redis.from_url(REDIS_URL)
    delivered = RedisDelivered(client, f"corral-test:{uuid.uuid4().hex}:")
    try:
        keys = delivery_keys("slack", "Ev\ud800", "C\x00\udfff", "1700000000.000100")
        await delivered.remember(keys)
        assert await delivered.known(keys)
        assert not delivered._resting()
    finally:
        await client.aclose()
