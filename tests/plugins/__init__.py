"""Pytest fixtures shared across test modules, one plugin module per domain."""
