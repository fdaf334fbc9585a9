"""Fixtures: warehouse (filled in by the domain that owns it)."""
