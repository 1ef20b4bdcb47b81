"""Admin commands: who may run them, and how a refusal is answered and audited.

Admins are ``roles.admins`` in team.yaml (``CommandContext.is_admin``); ``corral chat``'s
console and a shell (``corral schedule add …``) are the operator's, who may do anything,
and what they do is audited as done there.
"""

from __future__ import annotations

from corral.bot.commands.registry import CommandContext, CommandReply


def admin_mentions(ctx: CommandContext) -> str:
    """The team's admins as Slack and Discord mention them (``<@U…>``, joined by "or"),
    "" when there are none."""
    return " or ".join(f"<@{u}>" for u in ctx.team.admin_ids())


async def refuse(ctx: CommandContext, command: str, doing: str, line: str = "") -> CommandReply:
    """Tell the caller that only admins may do ``doing`` ("add schedules"), naming them
    and, when given, the ``line`` to ask them to run; and audit the refusal as
    ``permission.refused`` of ``command`` (``/corral schedule add``) where it was tried."""
    await ctx.storage.audit.record(
        ctx.user, "permission.refused", command, doing, where=ctx.where, outcome="refused"
    )
    admins = admin_mentions(ctx)
    if not admins:
        return CommandReply(
            f"Sorry, only admins can {doing}, and the team has none yet: their user ids "
            "go under `roles.admins` in team.yaml.",
            ok=False,
        )
    ask = f"Ask {admins} to run `{ctx.command(line)}`." if line else f"Ask {admins}."
    return CommandReply(f"Sorry, only admins can {doing}. {ask}", ok=False)
