"""Alembic migrations of the flag store: this project's own (MLflow keeps its own, in its own table).

`store.database.create_schema` runs them in code; `env.py` migrates the connection it is handed. A new
revision is a new file in `versions/` with the next number as `revision` and the latest as
`down_revision` (`script.py.mako` is the template `alembic revision` would fill in).
"""
