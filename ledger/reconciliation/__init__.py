"""Reconciliation in the domain: the differences a run finds between the books and the payment
provider (items.py), how each is settled, and the runs themselves (runs.py). Finding the
differences is the engine's work (projections/reconciliation/); here are only the facts."""
