"""Reconciliation's commands: what a run records (fees, the run, the items it found) and how an
item is settled (apply, explain, refund the duplicate). The engine that compares the books with
the provider lives in projections/reconciliation/."""
