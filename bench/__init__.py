"""Benchmarks for the billing ledger: `make bench` (`python -m bench`) prints plain-text tables.

Never part of the pass/fail suite: nothing here asserts on time. Every figure is measured in the
same run on SQLite (a file in a temp dir) and on a throwaway PostgreSQL cluster, beside the raw
INSERT rate of the same database (the ceiling).
"""
