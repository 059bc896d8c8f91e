"""The client portal in the domain: the links that let one customer see and pay their invoices
(links.py)."""
