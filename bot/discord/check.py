"""``corral check`` for Discord: is the token valid, is the Message Content intent on,
and does the bot have every permission it uses in each server?"""

from __future__ import annotations

import asyncio

import discord

from corral.agents.team_loader import Problem
from corral.storage.urls import scrubbed, shown_url

#: The permissions Corral uses (the README's invite link grants exactly these).
REQUIRED_PERMISSIONS = discord.Permissions(
    view_channel=True,
    send_messages=True,
    send_messages_in_threads=True,
    create_public_threads=True,
    read_message_history=True,
    manage_webhooks=True,
    add_reactions=True,
    use_application_commands=True,
    attach_files=True,
)
#: Application flags: the Message Content intent, switched on (or "limited", under 100
#: servers) in the developer portal.
MESSAGE_CONTENT_FLAGS = (1 << 18) | (1 << 19)


def check_discord(token: str, api_url: str) -> list[Problem]:
    """Ask Discord about the bot behind ``token``: does the token work, is the intent
    on, which permissions are missing where."""
    return asyncio.run(_check(token, api_url))


async def _check(token: str, api_url: str) -> list[Problem]:
    from corral.bot.discord.app import use_api_url

    use_api_url(api_url)
    http = discord.http.HTTPClient(asyncio.get_running_loop())
    try:
        await http.static_login(token)
        application = await http.application_info()
        guilds = await http.get_guilds(200)
    except discord.LoginFailure:
        return [
            Problem(
                ".env",
                None,
                "Discord refused DISCORD_TOKEN",
                "copy the bot's token from the developer portal (Bot → Reset Token)",
            )
        ]
    except (discord.HTTPException, OSError) as exc:
        return [
            Problem(
                ".env",
                None,
                f"could not ask Discord at {shown_url(api_url)} ({scrubbed(str(exc), api_url)})",
                "check the network, or DISCORD_API_URL if you use a proxy",
                severity="warning",
            )
        ]
    finally:
        await http.close()
    problems: list[Problem] = []
    if not int(application.get("flags") or 0) & MESSAGE_CONTENT_FLAGS:
        problems.append(
            Problem(
                ".env",
                None,
                "the Discord bot cannot read messages: the Message Content intent is off",
                "developer portal → your app → Bot → Privileged Gateway Intents → "
                "switch on Message Content Intent",
            )
        )
    if not guilds:
        problems.append(
            Problem(
                ".env",
                None,
                "the Discord bot is in no server",
                "invite it with the link in the README (Discord setup)",
                severity="warning",
            )
        )
    for guild in guilds:
        granted = discord.Permissions(int(guild.get("permissions") or 0))
        if granted.administrator:
            continue
        missing = [
            name for name, wanted in REQUIRED_PERMISSIONS if wanted and not getattr(granted, name)
        ]
        if missing:
            problems.append(
                Problem(
                    ".env",
                    None,
                    f"in Discord server {guild.get('name')!r} the bot lacks: " + ", ".join(missing),
                    "grant them to the bot's role (Server Settings → Roles), or invite it "
                    "again with the README's link",
                    severity="warning" if missing == ["manage_webhooks"] else "error",
                )
            )
    return problems
