"""Discord: the team in a Discord server, through discord.py."""
