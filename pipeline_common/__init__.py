"""Shared by the legacy scripts and the Dagster code location: settings, config, script plumbing."""
