"""Corral: a self-hosted operating system for teams of AI agents that work in chat.

The repository keeps ``bot/``, ``agents/`` and ``storage/`` at its top; they install and
import as ``corral.bot``, ``corral.agents`` and ``corral.storage`` (pyproject's
``package-dir``), so that nothing but ``corral`` lands at the top of site-packages.
"""
