"""Alembic's environment for Corral's migrations.

Corral runs Alembic from code (``Database.upgrade``), handing over an open connection in
``config.attributes["connection"]``; new revisions are made the same way, with
``alembic.command.revision(config, autogenerate=True)`` against that connection. Importing
this module outside an Alembic run does nothing.
"""

from __future__ import annotations

from alembic import context
from alembic.config import Config
from alembic.runtime.environment import NameFilterParentNames, NameFilterType
from sqlalchemy import Connection

from corral.storage.search import is_search_object
from corral.storage.tables import Base


def include_name(name: str | None, kind: NameFilterType, parents: NameFilterParentNames) -> bool:
    """Alembic's filter: leave out the word-search objects (FTS5 tables, tsvector
    columns, their indexes), which migrations create and ``storage/tables.py`` cannot
    declare, so that autogenerate neither drops them nor reports them as drift."""
    return not is_search_object(name, kind, parents.get("table_name"))


def run_migrations(config: Config) -> None:
    """Migrate the database behind the connection that ``config`` carries."""
    connection = config.attributes.get("connection")
    if not isinstance(connection, Connection):
        raise RuntimeError(
            "Corral's migrations need a connection in config.attributes['connection']; "
            "run them with `corral db upgrade`"
        )
    # Batch mode: SQLite can alter a table only by copying it, and batch operations
    # do that there while staying plain ALTERs on PostgreSQL.
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=True,
        include_name=include_name,
    )
    with context.begin_transaction():
        context.run_migrations()


# Alembic installs ``context.config`` only while it runs this file.
if hasattr(context, "config"):
    run_migrations(context.config)
