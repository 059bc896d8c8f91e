"""The client portal's commands (`app.portal`, links.py) and the signing of its links' tokens
(tokens.py)."""
