"""The dashboard's people in the domain: its users (users.py) and what each of them did
(activity.py). Who may log in and every action they took are events in the same log as the
invoices they acted on."""
