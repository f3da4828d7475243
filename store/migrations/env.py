"""Alembic environment of the flag store: migrate the connection `create_schema` hands over.

Run only through `store.database.create_schema`, which builds the Alembic `Config` in code and puts an
open connection in `config.attributes["connection"]`; there is no alembic.ini and no URL here.
"""

from __future__ import annotations

from alembic import context

import store.accounts
import store.cases
import store.offline
import store.register_tables
from store.database import VERSION_TABLE, Base

MODELS = (
    store.accounts,
    store.cases,
    store.offline,
    store.register_tables,
)  # every table of the history, on Base.metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError(
        "the flag store migrations run through store.database.create_schema(engine), "
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
