"""Alembic migrations of the read-model schema (projections/tables.py).

Run them with `projections.schema.upgrade(engine)`; `env.py` runs on the connection it hands in.
"""
