"""Post and record: the one step through which a run says anything.

Every post of a run (answers, handoff notes, approval requests, escalations, errors) goes
through :class:`Speaker`, which redacts it, posts it under the agent's persona and keeps
it in the thread's transcript; the thread's owner is set here and nowhere else.
"""

from __future__ import annotations

from dataclasses import replace

from sqlalchemy.ext.asyncio import AsyncConnection

from corral.agents.conversation import Place, Poster, Recorder, Reply
from corral.agents.redaction import BUILTIN, Redact
from corral.storage.transcript import TranscriptStore


class Speaker:
    """Posts replies through the platform's poster and records them in their thread,
    each redacted by ``redact`` first."""

    def __init__(
        self, transcript: TranscriptStore, post: Poster, redact: Redact = BUILTIN.redact
    ) -> None:
        self.transcript = transcript
        self.post = post
        self.redact = redact

    async def say(self, place: Place, reply: Reply, *, owner: str | None = None) -> None:
        """Post ``reply`` at ``place`` and add it to the thread's history; with ``owner``,
        the thread's follow-ups go to that agent from now on."""
        reply = replace(reply, text=self.redact(reply.text))
        # A post in another channel starts a conversation the platform names when it
        # exists; there is no thread of Corral's to keep it under.
        if not place.thread:
            await self.post(place, reply)
            return
        key = place.key

        async def record(on: AsyncConnection | None) -> None:
            await self.transcript.append(key, reply.text, agent=reply.agent, owner=owner, on=on)

        recorder: Recorder = record
        await self.post(place, reply, record=recorder)
