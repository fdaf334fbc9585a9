"""Fixtures: slack_server (filled in by the domain that owns it)."""
