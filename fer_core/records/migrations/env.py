"""Alembic's environment for the records database. The store passes an open connection in
``config.attributes["connection"]`` (``fer_core.records.database.migrate``); no URL is read
from a file, so the same migrations run on SQLite and PostgreSQL."""

from alembic import context

from fer_core.records.schema import metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters tables by copying
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
