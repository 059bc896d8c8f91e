"""The dashboard's commands: its users (users.py, `app.admin`) and the actor every dashboard
action is recorded under (acting.py, read by commands/runner.py)."""
