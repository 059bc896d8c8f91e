"""The invoice email commands (`app.mail`: commands.py)."""
