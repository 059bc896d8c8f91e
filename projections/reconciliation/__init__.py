"""Reconciliation's read models: what the ledger recorded by the provider's ids (ledger_side.py:
fees, payouts, refunds, disputes), the latest state of every item a run found (items.py), and
the runs themselves (runs.py), each with the queries the engine and the API call.

The engine compares a page of the provider's records with the ledger's side in one query per
page, never one per record: every lookup here takes a batch of ids.
"""
