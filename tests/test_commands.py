"""The command table: chat lines and separated values parse into the same typed values,
usage errors say what is wrong, and the Slack manifest's slash commands are the table's."""

from __future__ import annotations

from pathlib import Path

import pytest
from ruamel.yaml import YAML

from corral.bot.commands.registry import (
    Arg,
    Command,
    CommandContext,
    CommandReply,
    UsageError,
    Values,
    bind,
    parse_line,
)
from corral.bot.commands.table import find, help_text, manifest_slash_commands

MANIFEST = Path(__file__).resolve().parents[1] / "deploy" / "slack" / "manifest.yaml"


def _command(*path: str) -> Command:
    command = find(path)
    assert command is not None, path
    return command


def test_the_manifest_declares_the_tables_slash_commands() -> None:
    manifest = YAML(typ="safe").load(MANIFEST.read_text())
    declared = [
        {k: v for k, v in c.items() if k != "url"} for c in manifest["features"]["slash_commands"]
    ]
    # On a mismatch, write what the table says into deploy/slack/manifest.yaml.
    assert declared == manifest_slash_commands()


def test_a_chat_line_parses_into_typed_values() -> None:
    add = _command("memory", "add")
    values = parse_line(add, '"Mind the --agent flag" --agent @Beaver')
    assert values.given == {"text": "Mind the --agent flag", "agent": "Beaver"}
    # Flags stand anywhere; the words of a text are kept as typed, quotes inside included.
    values = parse_line(add, '--channel C0DEV Say "hi"  to  ops')
    assert values.given == {"channel": "C0DEV", "text": 'Say "hi" to ops'}
    assert parse_line(_command("memory", "forget"), "#12").number("id") == 12

    schedule = _command("corral", "schedule", "add")
    values = parse_line(
        schedule,
        '"0 9 * * 1-5" @Lark <#C0CON|content> "Draft this week\'s post" --tz Europe/Berlin',
    )
    assert values.given == {
        "when": "0 9 * * 1-5",
        "agent": "Lark",
        "channel": "<#C0CON|content>",
        "prompt": "Draft this week's post",
        "tz": "Europe/Berlin",
    }
    values = parse_line(schedule, "every 30m @owl #qa Check the build --name nightly")
    assert (values.text("when"), values.text("prompt"), values.text("name")) == (
        "every 30m",
        "Check the build",
        "nightly",
    )


@pytest.mark.parametrize(
    ("path", "text", "message"),
    [
        (("memory", "add"), "", "Say what to remember"),
        (("memory", "add"), "x --channel", "`--channel` needs a value"),
        (("memory", "forget"), "soon", "Give the memory's number"),
        (("memory", "forget"), "1 2", "`2` is more than the command takes"),
        (("corral", "schedule", "add"), "every 30m #ops Hi", "Say when, which agent, where"),
        (("corral", "schedule", "add"), "every 30m @roo", "Say when, which agent, where"),
        (("corral", "schedule", "pause"), "", "Name the schedule"),
    ],
)
def test_a_malformed_line_says_what_is_wrong(
    path: tuple[str, ...], text: str, message: str
) -> None:
    with pytest.raises(UsageError, match=message):
        parse_line(_command(*path), text)


def test_separated_values_are_taken_as_given() -> None:
    # As the shell passes them: each word one argument, never split again or read as a flag.
    schedule = _command("corral", "schedule", "add")
    values = bind(
        schedule,
        {"tz": None, "name": "nightly"},
        ["every 30m", "@owl", "C0QA", "Check --agent and --name"],
    )
    assert values.given == {
        "name": "nightly",
        "when": "every 30m",
        "agent": "owl",
        "channel": "C0QA",
        "prompt": "Check --agent and --name",
    }
    # As Discord passes them: every argument by name.
    add = _command("memory", "add")
    values = bind(add, {"text": "--agent is a word", "agent": None, "channel": ""})
    assert values.given == {"text": "--agent is a word"}
    with pytest.raises(UsageError, match="Say what to remember"):
        bind(add, {"text": "  "})


def test_a_text_argument_needs_a_marked_argument_after_it() -> None:
    async def handler(ctx: CommandContext, values: Values) -> CommandReply:
        return CommandReply("")

    with pytest.raises(ValueError, match="`who` ends a text, so it needs a prefix"):
        Command(("x", "y"), "help", handler, (Arg("what", "text"), Arg("who")))


def test_help_is_generated_from_the_table() -> None:
    assert help_text(("memory",)).splitlines()[0] == (
        "`/memory add TEXT [--agent NAME] [--channel #NAME]` — remember a fact"
    )
    assert "`/corral schedule add WHEN @AGENT #CHANNEL PROMPT [--tz ZONE] [--name NAME]`" in (
        help_text()
    )
