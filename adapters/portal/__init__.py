"""The client portal from the command line (cli.py)."""
