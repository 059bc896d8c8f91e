"""The admin dashboard's read models and queries."""
