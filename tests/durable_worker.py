"""A Corral worker process for the durable-work tests, to be killed with SIGKILL: the
test team's workers on Slack (the fake Slack server), the fake model server, the given
database and, with a Redis prefix, the shared queue. Configured by ``CORRAL_TEST_WORKER``
(JSON); prints ``ready`` once its workers run."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from harness import make_team
from redis.asyncio import Redis
from slack_sdk.web.async_client import AsyncWebClient

from corral.agents.llm.anthropic_provider import AnthropicProvider
from corral.agents.llm.openai_provider import OpenAIProvider
from corral.agents.llm.registry import ModelRegistry, ProviderSettings
from corral.agents.llm.retry import RetryPolicy
from corral.agents.runtime import Runtime
from corral.agents.seams import Seams
from corral.bot.coordinator import Coordinator
from corral.bot.gateway import Workers
from corral.bot.slack.adapter import SlackAdapter
from corral.bot.slack.directory import Directory
from corral.storage.queue import InProcessQueue, WorkQueue
from corral.storage.store import Storage
from corral.storage.stream_queue import RedisStreamQueue


async def main(config: dict[str, Any]) -> None:
    team = make_team()
    storage = await Storage.open(config["database_url"])
    models_url = config["models_url"]
    models = ModelRegistry(
        team.models,
        ProviderSettings.from_variables({"ANTHROPIC_API_KEY": "fake", "OPENAI_API_KEY": "fake"}),
        policy=RetryPolicy(attempts=1),
        provider_factories={
            "anthropic": lambda: AnthropicProvider(api_key="fake", base_url=models_url),
            "openai": lambda: OpenAIProvider(api_key="fake", base_url=f"{models_url}/v1"),
        },
    )
    client = AsyncWebClient(token=config["slack_token"], base_url=config["slack_url"])
    adapter = SlackAdapter(
        client,
        team,
        Directory(client),
        post_interval=0,
        react_after=3600,
        requests=storage.approvals,
    )
    queue: WorkQueue = InProcessQueue()
    if config.get("redis_prefix"):
        redis = Redis.from_url(config["redis_url"])
        queue = RedisStreamQueue(redis, prefix=config["redis_prefix"], block_ms=100)
    seams = Seams.compose(models.client_for)
    workers = Workers(
        storage,
        queue,
        Coordinator(team, storage.threads, seams.model_call),
        Runtime(team, seams, storage),
        {"slack": adapter},
        2,
        stale_after=config["stale_after"],
        sweep_every=0.2,
    )
    # As `corral worker` does: the SDK clients are made before the first message, not
    # while its lease runs.
    await models.warm_up()
    workers.start()
    print("ready", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    # On stderr, which the test shows when it fails.
    logging.basicConfig(level=logging.INFO, format="worker %(process)d %(name)s: %(message)s")
    asyncio.run(main(json.loads(os.environ["CORRAL_TEST_WORKER"])))
