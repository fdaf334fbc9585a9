"""Code references, so the Dagster UI's "open source" on an asset lands in the file that does its work.

Every asset links to the function that defines it (its factory, for factory-built assets:
`dg.with_source_code_references`, applied once to the whole code location); an asset that runs
a legacy script links to that script first; a dbt model links to its `.sql` first (the dbt
translator's `enable_code_references`).
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import dagster as dg
import dagster_shared.record as record

CODE_REFERENCES_KEY = "dagster/code_references"

# BetaWarning: Dagster 1.13 marks the code-reference API beta and warns at every use, once per asset
# (some 70 lines in logs/dagster.log at each code load, in every process that loads the location).
# This module is its one user, so the filters name exactly these three APIs; any other beta or
# preview API the project might start using still warns.
CODE_REFERENCE_BETA_APIS = (
    "Class `LocalFileCodeReference`",
    "Class `CodeReferencesMetadataValue`",
    "Function `with_source_code_references`",
)
for _api in CODE_REFERENCE_BETA_APIS:
    warnings.filterwarnings("ignore", message=re.escape(_api) + " is currently in beta", category=dg.BetaWarning)


def legacy_script_reference(*scripts: Path) -> dict[str, dg.CodeReferencesMetadataValue]:
    """Asset metadata linking to the legacy script(s) the asset runs, the one doing the work first
    (merged before the factory's link)."""
    references = [
        dg.LocalFileCodeReference(file_path=str(Path(script).resolve()), label=f"legacy script {Path(script).name}")
        for script in scripts
    ]
    return {CODE_REFERENCES_KEY: dg.CodeReferencesMetadataValue(code_references=references)}


def with_code_references(defs: dg.Definitions) -> dg.Definitions:
    """`defs` with each asset also linked to the function (file and line) that defines it."""
    assets = dg.with_source_code_references(list(defs.assets or []))
    return record.replace(defs, assets=assets)
