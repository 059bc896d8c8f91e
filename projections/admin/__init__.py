"""The dashboard's read models and queries: its users and their activity (users.py,
activity.py), the dunning status (dunning.py), and the pages' own queries beside them."""
