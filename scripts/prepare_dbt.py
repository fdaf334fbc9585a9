"""Prepare the dbt project at install time: check the generated staging, then `dbt parse` the manifest.

Run by the set-up scripts (scripts/setup.sh, setup.bat) and by hand after changing dbt/ or
pipeline.yaml: `python scripts/prepare_dbt.py`. Dagster then loads the manifest without parsing.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from pipeline_common.script_support import ArgumentParser  # wrong arguments exit 78, not 2

REPO_ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(description=__doc__.splitlines()[0])
    parser.parse_args(argv)

    from scripts.dev import generate_dbt_staging
    from pipeline_common.config import load_pipeline_config
    from pipeline_common.script_support import EXIT_CONFIG

    problems = generate_dbt_staging.out_of_sync(load_pipeline_config())
    if problems:
        print("\n".join(problems), file=sys.stderr)
        print(
            "dbt staging does not match pipeline.yaml: run `python scripts/dev/generate_dbt_staging.py`, "
            "review and commit the files, then run this again",
            file=sys.stderr,
        )
        return EXIT_CONFIG

    from orchestration.warehouse.resource import prepare_manifest
    from pipeline_common.settings import duckdb_path

    # DuckDB does not create missing folders, and a bare `dbt build` from the README needs this one.
    duckdb_path().parent.mkdir(parents=True, exist_ok=True)
    path = prepare_manifest()
    print(f"dbt manifest ready: {path}")
    if os.name == "nt":
        # dbt writes paths ~190 characters below the repo root: under a deep OneDrive folder they
        # pass Windows' 260 unless long paths are enabled, and dbt then fails with odd errors.
        from scripts import doctor

        result = doctor.long_path_result(str(REPO_ROOT), path, doctor._long_paths_enabled)
        if result.status == "PROBLEM":
            print(result.line(), file=sys.stderr)
            return EXIT_CONFIG
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
