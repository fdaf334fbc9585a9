"""Blast radius of one market in the warehouse: the market gates, and the build around them.

Each market's staging models feed the rest of the warehouse only through that market's gates
(`good_<market>_<dataset>`, macro `market_gate` in dbt/macros/staging.sql): a gate depends on every
staging model of its market, so when one of them fails a test or its build, dbt skips the market's
gates and they keep the rows of the last build in which the whole market passed.

But dbt skips *every* descendant of a failed node, and every cross-market model descends from every
market's gates. So when the build had failures, the asset builds again the models dbt skipped
downstream of the gates, reading the held gates, except what a failure reaches *without* passing
through a gate (a failed budget staging model still holds back every model that reads it). A build
without failures is one dbt process, as before.

A failed test on a gated staging model is a failed, non-blocking asset check (the gate is its
block) whose metadata names the market and the files of the offending rows, read back from the
warehouse with the test's own compiled SQL once dbt has exited (docs/warehouse.md, "A market that
fails a test holds back only itself").
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dagster as dg

from orchestration.warehouse.translator import layer_and_market

STAGING_LAYER = "staging"
GATE_MATERIALIZATION = "market_gate"
RESULT_EVENTS = {"LogModelResult", "LogTestResult", "LogSeedResult", "LogSnapshotResult"}  # dbt Core's
FAILED_STATUSES = {"error", "fail"}  # "warn" holds nothing back
MAX_FILES_LISTED = 10
READ_TIMEOUT_SECONDS = 10.0


def is_gate(node: Mapping[str, Any]) -> bool:
    return (node.get("config") or {}).get("materialized") == GATE_MATERIALIZATION


def is_staging(node: Mapping[str, Any]) -> bool:
    return layer_and_market(node.get("fqn") or [])[0] == STAGING_LAYER


def _models(manifest: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    return {uid: node for uid, node in manifest["nodes"].items() if node.get("resource_type") == "model"}


def all_models_but(manifest: Mapping[str, Any], keep: Iterable[str]) -> list[str]:
    """Every model's name except `keep`: the --exclude that leaves only `keep` (and their tests)."""
    keep = set(keep)
    return sorted(node["name"] for node in _models(manifest).values() if node["name"] not in keep)


def not_built(manifest: Mapping[str, Any], selected: set[str], built: set[str], failed: Iterable[str]) -> list[str]:
    """unique_ids of the selected models the build skipped (neither built nor failed)."""
    failed = set(failed)
    return sorted(uid for uid, node in _models(manifest).items()
                  if node["name"] in selected and node["name"] not in built and uid not in failed)


def rebuild_after_gates(manifest: Mapping[str, Any], skipped: Iterable[str], held: Iterable[str]) -> list[str]:
    """Names of the skipped models downstream of the gates that no ungated failure reaches: built again."""
    models = _models(manifest)
    held = set(held)
    return sorted(models[uid]["name"] for uid in skipped
                  if not is_staging(models[uid]) and models[uid]["name"] not in held)


def gated_models(manifest: Mapping[str, Any]) -> set[str]:
    """unique_ids of the staging models whose only way downstream is their market's gates."""
    models = _models(manifest)
    child_map = manifest["child_map"]
    found = set()
    for uid, node in models.items():
        children = [c for c in child_map.get(uid, []) if c.startswith("model.")]
        if is_staging(node) and not is_gate(node) and children and all(is_gate(models[c]) for c in children):
            found.add(uid)
    return found


def held_back(manifest: Mapping[str, Any], failed: Iterable[str]) -> list[str]:
    """Names of the models past the staging layer that a failure reaches without passing a gate.

    `failed`: unique_ids of the tests and models that failed (not those dbt skipped). A test
    reaches what its models reach. Gates are never passed through: a skipped gate keeps its last good
    rows, which is exactly what the other markets' models may read.
    """
    models = _models(manifest)
    child_map = manifest["child_map"]
    start: list[str] = []
    for uid in failed:
        node = manifest["nodes"].get(uid)
        if node is None:
            continue
        if node.get("resource_type") == "test":
            start += [p for p in node["depends_on"]["nodes"] if p in models]
        elif uid in models and not is_gate(node):
            start.append(uid)
        elif uid in models:  # a gate that failed its own build: downstream must not read it
            start += [c for c in child_map.get(uid, []) if c in models]
    reached: set[str] = set()
    stack = list(start)
    while stack:
        uid = stack.pop()
        if uid in reached:
            continue
        reached.add(uid)
        stack += [c for c in child_map.get(uid, []) if c in models and not is_gate(models[c])]
    return sorted(models[uid]["name"] for uid in reached if not is_staging(models[uid]))


def is_contained(manifest: Mapping[str, Any], uid: str) -> bool:
    """A failed test of gated staging models only: reported by its check, the market's gates hold it.

    A model that fails its build is not: it has no check to report it, so the step fails (after the
    other markets' models are built) and the run-failure alert names it.
    """
    node = manifest["nodes"].get(uid) or {}
    parents = [p for p in node.get("depends_on", {}).get("nodes", []) if p.startswith("model.")]
    return node.get("resource_type") == "test" and bool(parents) and set(parents) <= gated_models(manifest)


@dataclass
class BuildOutcome:
    """What one `dbt build` did: its Dagster events and the nodes that failed (tests and models)."""

    events: list = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


def drain(invocation) -> BuildOutcome:
    """Drain one dbt invocation: Dagster events as dagster-dbt makes them, plus failed node ids."""
    outcome = BuildOutcome()
    for event in invocation.stream_raw_events():
        data = event.raw_event.get("data") or {}
        node_info = data.get("node_info") or {}
        if event.raw_event.get("info", {}).get("name") in RESULT_EVENTS and node_info.get("unique_id"):
            status = node_info.get("node_status")
            if status in (None, "", "None"):  # as dagster-dbt reads it: the node's, else the result's status
                status = data.get("status")
            if str(status).lower() in FAILED_STATUSES:
                outcome.failed.append(node_info["unique_id"])
        outcome.events.extend(
            event.to_default_asset_events(
                manifest=invocation.manifest,
                dagster_dbt_translator=invocation.dagster_dbt_translator,
                context=invocation.context,
                target_path=invocation.target_path,
                project=invocation.project,
            )
        )
    return outcome


def create_missing_gates(manifest: Mapping[str, Any], skipped: Iterable[str], connect, log) -> list[str]:
    """A held gate that was never built (a market's first data fails a test) starts empty.

    Its market has no last good state yet: the models downstream read no rows of it, and the other
    markets still build (a missing table would fail them all). `connect()` opens the warehouse for
    writing, after dbt has exited. The gate has no `_warehouse_state` row, so its next build is full.
    """
    gates = [manifest["nodes"][uid] for uid in skipped if is_gate(manifest["nodes"][uid])]
    if not gates:
        return []
    created = []
    try:
        con = connect()
    except Exception as exc:  # noqa: BLE001  (then the models downstream fail, naming the missing gate)
        log.warning(f"market gates not created: the warehouse could not be opened: {exc}")
        return []
    try:
        for gate in gates:
            schema, name = gate["schema"], gate["alias"] or gate["name"]
            exists = con.execute(
                "select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
                [schema, name],
            ).fetchone()[0]
            if exists:
                continue
            source = next(manifest["nodes"][p] for p in gate["depends_on"]["nodes"]
                          if manifest["nodes"][p]["name"] == gate["config"]["gate_of"])
            try:
                con.execute(f'create table "{schema}"."{name}" as '
                            f'select * from "{schema}"."{source["alias"] or source["name"]}" limit 0')
            except Exception as exc:  # noqa: BLE001  (its staging model was never built either)
                log.warning(f"market gate {name} not created: {exc}")
                continue
            created.append(name)
    finally:
        con.close()
    if created:
        log.warning(f"market gates created empty (their market has no good build yet): {', '.join(created)}")
    return created


def market_of(manifest: Mapping[str, Any], test_uid: str) -> str | None:
    """The market (upper case) of the gated staging model a test is attached to, else None."""
    node = manifest["nodes"].get(test_uid) or {}
    gated = gated_models(manifest)
    for parent in node.get("depends_on", {}).get("nodes", []):
        if parent in gated:
            _, market = layer_and_market(manifest["nodes"][parent]["fqn"])
            return market.upper() if market else None
    return None


def compiled_sql(target_path: Path, node: Mapping[str, Any]) -> str | None:
    """The SQL dbt ran for a test (target/compiled/<package>/<file>/<test>.sql), if dbt wrote it."""
    path = target_path / "compiled" / node["package_name"] / node["original_file_path"] / node["path"]
    try:
        return path.read_text(encoding="utf-8")
    except OSError:
        return None


def offending_files(con, sql: str) -> list[tuple[str, int]]:
    """[(file, offending rows)] of a test's failing rows, when they carry `_source_blob`."""
    columns = [d[0] for d in con.execute(f"select * from ({sql}) as failing limit 0").description]
    if "_source_blob" not in columns:
        return []
    return [
        (str(blob), int(rows))
        for blob, rows in con.execute(
            f"select _source_blob, count(*) from ({sql}) as failing group by 1 order by 1"
        ).fetchall()
    ]


def describe_files(files: list[tuple[str, int]]) -> str:
    listed = [f"{blob} ({rows} row{'s' if rows != 1 else ''})" for blob, rows in files[:MAX_FILES_LISTED]]
    more = len(files) - MAX_FILES_LISTED
    return "; ".join(listed) + (f"; and {more} more file(s)" if more > 0 else "")


def annotated_checks(
    events: list, manifest: Mapping[str, Any], target_path: Path, connect, log
) -> Iterator:
    """The events, each failed check of a gated staging model carrying `market`, `files` and `held_back`.

    `connect()` opens the warehouse read-only (called once, only when a gated check failed).
    """
    con = None
    try:
        for event in events:
            if isinstance(event, dg.AssetCheckResult) and not event.passed:
                uid = getattr((event.metadata or {}).get("unique_id"), "value", None)
                market = market_of(manifest, uid) if uid else None
                if market:
                    extra = {
                        "market": market,
                        "held_back": f"{market}'s models keep their last good rows; the other markets build as usual",
                    }
                    sql = compiled_sql(target_path, manifest["nodes"][uid])
                    try:
                        if sql is None:
                            raise OSError("compiled SQL not written")
                        con = con or connect()
                        files = offending_files(con, sql)
                        extra["files"] = describe_files(files) if files else "(the failing rows carry no file name)"
                    except Exception as exc:  # noqa: BLE001  (metadata only: the check's verdict stands)
                        log.warning(f"files of the failing rows of {event.check_name} not read: {exc}")
                        extra["files"] = "(not read: see the run log)"
                    event = event._replace(
                        metadata={**(event.metadata or {}), **extra},
                        description=(
                            f"{market} data failed this test: {extra['files']}. "
                            f"{market} stays at its last good state; the other markets are current."
                        ),
                    )
            yield event
    finally:
        if con is not None:
            con.close()
