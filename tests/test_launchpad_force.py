"""README "Re-run a missed or bad day": the launchpad's `force: true` on a sync asset re-syncs every
file in the window although none changed; without it the same run skips them all."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import dagster as dg

from tests.plugins.azurite import LandingTree

AS_OF = dt.date(2026, 11, 20)
DAYS = 3


def _materialize(run_config: dict) -> dg.ExecuteInProcessResult:
    from orchestration.definitions import defs

    job = defs.resolve_implicit_global_asset_job_def().get_subset(asset_selection={dg.AssetKey("uk_orders_azure")})
    return job.execute_in_process(
        run_config={"ops": {"azure_sync": {"config": run_config}}},
        resources={"pipes_subprocess_client": dg.PipesSubprocessClient()},
        raise_on_error=False,
    )


def _synced(result: dg.ExecuteInProcessResult) -> tuple[int, int]:
    [materialization] = [e.event_specific_data.materialization for e in result.get_asset_materialization_events()
                         if e.asset_key == dg.AssetKey("uk_orders_azure")]
    return materialization.metadata["files_synced"].value, materialization.metadata["files_skipped"].value


def test_force_resyncs_unchanged_files(sync_landing: LandingTree, isolated_env: Path):
    for offset in range(DAYS):
        sync_landing.write_orders("UK", AS_OF - dt.timedelta(days=offset), rows=4)
    window = {"as_of": AS_OF.isoformat(), "days_back": DAYS}
    first = _materialize(window)
    assert first.success and _synced(first) == (DAYS, 0)
    outputs = sorted((isolated_env / "raw" / "UK" / "ingest_orders").rglob("*.parquet"))
    stamps = [p.stat().st_mtime_ns for p in outputs]

    unforced = _materialize(window)
    assert unforced.success and _synced(unforced) == (0, DAYS)
    assert [p.stat().st_mtime_ns for p in outputs] == stamps

    forced = _materialize({**window, "force": True})
    assert forced.success and _synced(forced) == (DAYS, 0)
    assert all(p.stat().st_mtime_ns != s for p, s in zip(outputs, stamps))  # rewritten


def test_readme_launchpad_config_is_accepted_by_the_sync_step(sync_landing: LandingTree, isolated_env: Path):
    """The YAML the README tells the analyst to paste into the launchpad runs as it stands."""
    import yaml

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("**Re-running a missed or bad day from the UI**"):]
    block = section[section.index("```yaml") + len("```yaml"):section.index("```", section.index("```yaml") + 7)]
    run_config = yaml.safe_load(block)
    [(op, body)] = run_config["ops"].items()
    day = dt.date.fromisoformat(body["config"]["as_of"])
    sync_landing.write_orders("UK", day, rows=3)
    from orchestration.definitions import defs

    job = defs.resolve_implicit_global_asset_job_def().get_subset(asset_selection={dg.AssetKey("uk_orders_azure")})
    result = job.execute_in_process(run_config=run_config, raise_on_error=False)
    assert result.success
    assert _synced(result) == (1, 0)
