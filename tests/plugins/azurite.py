"""Fixtures: azurite (filled in by the domain that owns it)."""
