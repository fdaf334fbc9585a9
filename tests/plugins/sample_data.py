"""Fixtures: sample_data (filled in by the domain that owns it)."""
