"""The dashboard's read models and queries: its users and their activity here (users.py,
activity.py), the pages' own queries beside them."""
