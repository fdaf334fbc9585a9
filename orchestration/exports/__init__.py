"""Tableau extracts: one asset per `exports` entry of pipeline.yaml, built by the export script."""

from orchestration.exports.assets import build_defs

__all__ = ["build_defs"]
