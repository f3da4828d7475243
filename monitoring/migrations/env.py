"""Alembic environment of the flag store: migrate the connection `create_schema` hands over.

Run only through `monitoring.store.create_schema`, which builds the Alembic `Config` in code and puts an
open connection in `config.attributes["connection"]`; there is no alembic.ini and no URL here.
"""

from __future__ import annotations

from alembic import context

from monitoring.store import VERSION_TABLE, Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError(
        "the flag store migrations run through monitoring.store.create_schema(engine), "
        "which passes the database connection; there is no alembic.ini"
    )
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    version_table=VERSION_TABLE,
    render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters tables by copying them
)
with context.begin_transaction():
    context.run_migrations()
