"""The reconciliation API: runs, their reports, the items they found and how each is settled."""
