"""Slash commands, declared once and served by every surface (console, Slack, Discord, CLI)."""
