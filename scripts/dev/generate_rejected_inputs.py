"""Write the generated sections of docs/rejected_inputs.md from the declared schema and the exit-code map.

Two sections are generated, between their BEGIN/END markers (the prose around them is hand-written):
- "Declared schema": per dataset type of pipeline.yaml, each column's type, exact text format,
  nullability, bounds and allowed values, and the rejection message the sync gives for each rule,
  rendered by the sync's own message texts (azure_sync.csv_reader, azure_sync.value_rules);
- "Exit-code map": what script_support.classify_failure (the one place that maps exceptions to exit
  codes) returns for each class of failure, computed by calling it.

`--check` exits 1 when the committed file is out of date (tests/test_rejected_inputs_doc.py runs it).
"""

from __future__ import annotations

import datetime as dt
import errno
import re
import sqlite3
import sys
from pathlib import Path

import pyarrow as pa

from azure_sync.csv_reader import EXPECTED_TEXT
from azure_sync.value_rules import column_rules
from pipeline_common.config import PipelineConfig, load_pipeline_config
from pipeline_common.script_support import (
    ArgumentParser,
    BadDataError,
    ConfigurationError,
    PipelineIOError,
    TransientError,
    classify_failure,
    run_main,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
DOC = REPO_ROOT / "docs" / "rejected_inputs.md"
SCHEMA = "declared schema"
EXIT_MAP = "exit-code map"
FORMATS = {
    "integer": "digits `0-9`, an optional leading `-`; no `+`, spaces, `0x`, `1e3`, `1_000`",
    "decimal": "digits, an optional leading `-`, at most 2 places after a `.` (`12`, `12.5`, `12.50`); no `1e2`, `.5`, `1.`, `1,50`",
    "date": "`YYYY-MM-DD`, a real calendar day",
    "timestamp": "`YYYY-MM-DD HH:MM:SS` exactly: no bare date, no `T`, no fraction, no zone",
    "string": "UTF-8 text, at most 64 KiB",
}


def _marker(name: str, end: bool = False) -> str:
    return f"<!-- {'END' if end else 'BEGIN'} GENERATED {name} (scripts/dev/generate_rejected_inputs.py) -->"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def render_schema(config: PipelineConfig) -> str:
    market = next(iter(config.markets))
    currency = config.markets[market].currency
    file_date = dt.date(2026, 11, 19)
    out = [
        "Made from `pipeline.yaml` `dataset_types`: the same declaration the sync enforces and the dbt "
        "staging tests check. Every message is `<blob> line L, column 'C': ...`; every rejection is exit 65 "
        f"and keeps the file's earlier Parquet. Messages shown for market {market} ({currency}), file date "
        f"{file_date}.",
        "",
    ]
    for name, kind in config.dataset_types.items():
        change = f"; change date `{kind.change_date}`" if kind.change_date else ""
        out += [f"### `{name}` ({kind.cadence}; grain {', '.join(f'`{g}`' for g in kind.grain)}{change})", "",
                "| column | type and exact text | may be empty | rules, and the message of each |",
                "| --- | --- | --- | --- |"]
        for column_name, column in kind.columns.items():
            dummy = pa.chunked_array([pa.array([], type=pa.string())])
            rules = [expected for _, expected in column_rules(column, dummy, currency, file_date)]
            if column.type != "string":
                rules.insert(0, f"expected {EXPECTED_TEXT[column.type]}")
            if column_name in kind.grain:
                rules.append("duplicate value V (first on line N) - unique within a file")
            shown = "; ".join(f"`{_cell(rule)}`" for rule in rules) or "-"
            out.append(f"| `{column_name}` | {column.type}: {_cell(FORMATS[column.type])} | "
                       f"{'yes' if column.nullable else 'no'} | {shown} |")
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def _map_cases() -> list[tuple[str, BaseException]]:
    return [
        ("bad data (`BadDataError`: a rejected file, cell or query)", BadDataError("...")),
        ("configuration (`ConfigurationError`, `ConfigError`: arguments, pipeline.yaml, variables, credentials)",
         ConfigurationError("...")),
        ("transient (`TransientError`: throttling, a held lock, a file open elsewhere)", TransientError("...")),
        ("the pipeline's own files (`PipelineIOError`: disk full, permissions, a damaged warehouse)",
         PipelineIOError("...")),
        ("a network error that escaped the script (`ConnectionError`, `TimeoutError`, DNS `socket.gaierror`)",
         ConnectionResetError(errno.ECONNRESET, "reset")),
        ("any other `OSError`, whatever its errno (`ENOSPC`, `EACCES`, `ENOTDIR`, `EISDIR`, `ENAMETOOLONG`, ...)",
         OSError(errno.ENOTDIR, "Not a directory", "x")),
        ("text that is not in its encoding (`UnicodeError`)", UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid")),
        ("a library saying the disk is full (DuckDB, Hyper, SQLite under `DAGSTER_HOME`)",
         sqlite3.OperationalError("database or disk is full")),
        ("a damaged SQLite file (`file is not a database`, `database disk image is malformed`: the Dagster home's "
         "storage; the message names the file when the script knows its home)",
         sqlite3.DatabaseError("file is not a database")),
        ("SQLite refused by the file system (`disk I/O error`, `unable to open database file`, "
         "`attempt to write a readonly database`)", sqlite3.OperationalError("disk I/O error")),
        ("out of memory (`MemoryError`)", MemoryError()),
        ("anything else: a bug", ValueError("...")),
    ]


def render_exit_map() -> str:
    out = ["What `pipeline_common/script_support.py` `classify_failure` returns (every script, by hand and "
           "under Dagster; `supervisor.py`, `serve.py`, `status.py`, `doctor.py`, start-up recovery and the "
           "generators through `run_main`):", "",
           "| failure | exit |", "| --- | --- |"]
    for label, exc in _map_cases():
        found = classify_failure(exc)  # type: ignore[arg-type]
        out.append(f"| {label} | {found[0] if found else '1 (traceback in the run log)'} |")
    return "\n".join(out) + "\n"


def render(text: str, config: PipelineConfig) -> str:
    for name, body in ((SCHEMA, render_schema(config)), (EXIT_MAP, render_exit_map())):
        pattern = re.compile(re.escape(_marker(name)) + r".*?" + re.escape(_marker(name, end=True)), re.S)
        block = f"{_marker(name)}\n{body}{_marker(name, end=True)}"
        if not pattern.search(text):
            raise ConfigurationError(f"{DOC}: the markers of the generated section {name!r} are missing")
        text = pattern.sub(lambda _: block, text)
    return text


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report whether the file is out of date (exit 1)")
    args = parser.parse_args(argv)
    current = DOC.read_text(encoding="utf-8")
    wanted = render(current, load_pipeline_config())
    if args.check:
        if wanted != current:
            print("docs/rejected_inputs.md is out of date: run python scripts/dev/generate_rejected_inputs.py",
                  file=sys.stderr)
            return 1
        print("docs/rejected_inputs.md is in sync with pipeline.yaml and the exit-code map")
        return 0
    if wanted != current:
        DOC.write_text(wanted, encoding="utf-8", newline="\n")
        print(f"wrote {DOC.relative_to(REPO_ROOT).as_posix()}")
    else:
        print("docs/rejected_inputs.md already in sync")
    return 0


if __name__ == "__main__":
    raise SystemExit(run_main(main))
