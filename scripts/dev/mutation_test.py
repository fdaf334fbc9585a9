"""Mutation testing of the rule modules with mutmut (docs/testing.md, "Mutation testing"). Not run by CI.

    .venv/bin/python scripts/dev/mutation_test.py            # all rule modules: score and survivors
    .venv/bin/python scripts/dev/mutation_test.py --keep DIR # keep the work folder (mutmut's state) in DIR
    .venv/bin/python scripts/dev/mutation_test.py --keep DIR --module pipeline_common.secrets  # one module
    .venv/bin/python scripts/dev/mutation_test.py --keep DIR --report-only    # the score of what DIR holds

mutmut breaks one thing at a time in a copy of the code (a `>` made `>=`, a constant changed, a call dropped)
and runs the tests that cover that line; a mutant the tests do not notice "survives". The rule modules are
those that decide what is accepted, kept, alerted or hidden: value rules, the strict CSV reader's checks, the
budget sheet's guards, freshness decisions, secret scrubbing and exit-code classification.

The work happens in a copy of the working tree in a temporary folder (the tree itself is never changed),
laid out so that mutmut's module names match the imports: each rule module's top-level package is moved to
`src/`. Needs Linux or macOS (mutmut forks a process per mutant). CPU-heavy: run it at low priority
(`nice -n 19`); it runs one worker unless --workers says otherwise. Exit 0 when the score reaches --target.
"""

from __future__ import annotations

import ast
import fnmatch
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

RULE_MODULES = [
    "azure_sync.value_rules",          # value rules at sync (contract section 3)
    "azure_sync.csv_reader",           # the strict CSV reader's checks
    "sharepoint_budget.workbook",      # the budget sheet's guards
    "pipeline_common.freshness",       # freshness decisions ("is my data current?")
    "pipeline_common.secrets",         # secret scrubbing
    "pipeline_common.script_support",  # exit-code classification (contract section 8)
]
# What is mutated: mutmut's mutant names (module.x_function / module.xǁClassǁmethod), as fnmatch patterns.
# Whole modules where the module is the rule; in script_support only the exit-code classification and the
# scrubbing of a failure (the rest of it is Pipes and logging plumbing, not a rule).
MUTANTS = [
    "azure_sync.value_rules.*",
    "azure_sync.csv_reader.*",
    "sharepoint_budget.workbook.*",
    "pipeline_common.freshness.*",
    "pipeline_common.secrets.*",
    "pipeline_common.script_support.x_classify_failure__*",
    "pipeline_common.script_support.x_io_error__*",
    "pipeline_common.script_support.x_disk_full_error__*",
    "pipeline_common.script_support.x__cut_chain__*",
    "pipeline_common.script_support.x__fail__*",
]
# In-process tests of those modules (a mutant is only seen by tests that import the mutated copy in the
# same process: tests that start the scripts as subprocesses cannot kill it, so they are not listed).
TESTS = [
    "tests/test_sync_value_rules.py", "tests/test_faults_property.py", "tests/test_csv_reader_rules.py",
    "tests/test_budget_rules.py", "tests/test_freshness.py", "tests/test_secrets_scrub.py",
    "tests/test_exit_codes.py", "tests/test_alerts_freshness_alerts.py", "tests/test_freshness_rules.py",
    "tests/test_workbook_rules.py", "tests/test_csv_reader_cases.py", "tests/test_value_rules_cases.py",
    "tests/test_failure_scrub_cases.py", "tests/test_secrets_cases.py", "tests/test_adversarial_reader.py",
]
# The test files that reach each module in-process (a run of some modules runs only theirs: mutmut first runs
# every selected test once to map tests to functions, which is most of a small module's run time).
TESTS_OF = {
    "azure_sync.value_rules": ["tests/test_sync_value_rules.py", "tests/test_value_rules_cases.py",
                               "tests/test_faults_property.py"],
    # the reader's own files: the value-rule files read only good files through it, and the fault property
    # test (8 s) would be most of each surviving mutant's time on the 1,100 mutants of this module
    "azure_sync.csv_reader": ["tests/test_csv_reader_rules.py", "tests/test_csv_reader_cases.py",
                              "tests/test_adversarial_reader.py"],  # the first-fault and carriage-return classes
    "sharepoint_budget.workbook": ["tests/test_workbook_rules.py", "tests/test_budget_rules.py",
                                   "tests/test_faults_property.py"],
    "pipeline_common.freshness": ["tests/test_freshness_rules.py", "tests/test_freshness.py",
                                  "tests/test_alerts_freshness_alerts.py"],
    "pipeline_common.secrets": ["tests/test_secrets_scrub.py", "tests/test_secrets_cases.py",
                                "tests/test_failure_scrub_cases.py", "tests/test_exit_codes.py"],
    "pipeline_common.script_support": ["tests/test_exit_codes.py", "tests/test_failure_scrub_cases.py",
                                       "tests/test_secrets_scrub.py", "tests/test_faults_property.py"],
}
TREE_PARTS = ["tests", "orchestration", "scripts", "bat_file_data_refresh", "pipeline_common", "dbt", "pipeline.yaml",
              "dagster.yaml", "workspace.yaml"]


def _package_dir(module: str) -> Path:
    """The folder of `module`'s top-level package inside the repo (installed or not)."""
    package, leaf = module.split(".")[0], module.split(".")[-1]
    for pattern in (package, f"*/{package}", f"*/*/{package}"):  # namespace packages too (no __init__.py)
        found = [p for p in REPO.glob(pattern) if (p / f"{leaf}.py").is_file() and ".venv" not in p.parts]
        if found:
            return found[0].resolve()
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(f"cannot find the package of {module}")
    return Path(list(spec.submodule_search_locations)[0]).resolve()


def _tracked_files() -> list[str]:
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                            capture_output=True, check=True).stdout.decode("utf-8")
    return [name for name in listed.split("\0") if name and (REPO / name).is_file()]


def stage(work: Path, timeout_multiplier: float, modules: list[str] | None = None) -> list[str]:
    """Copy the working tree into `work`, each rule module's package moved to src/; return mutmut's config."""
    for name in _tracked_files():
        target = work / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, target)
    packages = {module.split(".")[0]: _package_dir(module) for module in RULE_MODULES}
    for package, location in packages.items():
        copied = work / location.relative_to(REPO)
        shutil.rmtree(work / "src" / package, ignore_errors=True)  # a half-staged folder from an earlier start
        shutil.copytree(copied, work / "src" / package)
        if copied.parent == work:
            # A package at the top of the tree would be imported from there (pytest puts the root on sys.path
            # for `tests.plugins`), unmutated: every mutant of it would be "no tests". Only src/ keeps it.
            # (Packages further down, e.g. under bat_file_data_refresh/python/, stay for the scripts there.)
            shutil.rmtree(copied)
    conftest = work / "tests" / "conftest.py"  # in-process imports take the mutated copy, before conftest's own
    lines = conftest.read_text(encoding="utf-8").splitlines(keepends=True)
    at = next((i + 1 for i, line in enumerate(lines) if line.startswith("from __future__ import")), 0)
    lines.insert(at, "import sys as _sys\nfrom pathlib import Path as _Path\n"
                     "_sys.path.insert(0, str(_Path(__file__).resolve().parents[1] / 'src'))\n"
                     # A failing property test stops at its first failing example: hypothesis's shrinking of it
                     # (many more runs, only to make the example smaller) took most of a killed mutant's time.
                     "from hypothesis import Phase as _Phase, settings as _settings\n"
                     "_settings.register_profile('mutation', phases=[_Phase.explicit, _Phase.reuse, _Phase.generate])\n"
                     "_settings.load_profile('mutation')\n")
    conftest.write_text("".join(lines), encoding="utf-8")
    only = [f"src/{m.replace('.', '/')}.py" for m in RULE_MODULES]
    selected = TESTS if not modules else [t for t in TESTS if any(t in TESTS_OF[m] for m in modules)]
    tests = [t for t in selected if (work / t).exists()]
    also_copy = [p for p in TREE_PARTS if (work / p).exists()]
    pyproject = work / "pyproject.toml"  # mutmut's settings, in the work folder's copy only
    pyproject.write_text(
        pyproject.read_text(encoding="utf-8") + "\n[tool.mutmut]\n"
        'source_paths = ["src"]\n'
        f"only_mutate = {json.dumps(only)}\n"
        f"also_copy = {json.dumps(also_copy)}\n"
        f"pytest_add_cli_args_test_selection = {json.dumps(tests)}\n"
        'pytest_add_cli_args = ["-p", "no:cacheprovider", "-p", "no:xdist", "-q"]\n'
        f"timeout_multiplier = {float(timeout_multiplier)}\n",
        encoding="utf-8",
    )
    return tests


def results(work: Path, env: dict[str, str]) -> dict[str, str]:
    shown = subprocess.run([str(Path(sys.executable).with_name("mutmut")), "results", "--all", "true"], cwd=work,
                           env=env, capture_output=True, text=True)
    found = {}
    for line in shown.stdout.splitlines():
        match = re.match(r"^\s*(\S+\.x[_ǁ]\S+):\s*(.+)$", line)  # functions x_f, methods xǁClassǁm
        if match:
            found[match.group(1)] = match.group(2).strip()
    return found


def retest_names(work: Path, env: dict[str, str], tests: list[str], patterns: list[str]) -> list[str]:
    """Refresh the kept folder's copies of the test files and of the rule modules (mutmut resets the results of
    every function whose code changed) and name the mutants to check (again): those that
    survived, were reached by no test, or were not checked yet (a run that was stopped). A mutant the tests killed stays killed when tests are only added,
    so this gives the score of a fresh run with the new tests in a fraction of its time. The list of test
    files must stay as staged (mutmut resets every result when its test selection changes)."""
    for name in tests:
        for target in (work / name, work / "mutants" / name):
            if target.parent.is_dir():
                shutil.copy2(REPO / name, target)
    changed: list[str] = []
    for module in RULE_MODULES:  # the source too: mutmut resets the mutants of every function whose code changed
        source = _package_dir(module) / f"{module.split('.')[-1]}.py"
        target = work / "src" / Path(*module.split(".")).with_suffix(".py")
        if target.is_file() and target.read_bytes() != source.read_bytes():
            changed += [f"{module}.{name}__mutmut_*" for name in _changed_functions(
                target.read_text(encoding="utf-8"), source.read_text(encoding="utf-8"))]
            shutil.copy(source, target)  # a new modification time: mutmut compares it with its mutants' file
    again = sorted(k for k, v in results(work, env).items()
                   if v in ("survived", "no tests", "not checked") and any(fnmatch.fnmatch(k, p) for p in patterns))
    return again + [c for c in changed if any(fnmatch.fnmatch(c, p) for p in patterns)]


def _changed_functions(old: str, new: str) -> list[str]:
    """mutmut's names (x_f, xǁClassǁm) of the functions and methods whose code differs between two sources."""
    def functions(text: str) -> dict[str, str]:
        found = {}
        for node in ast.parse(text).body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                found[f"x_{node.name}"] = ast.dump(node)
            elif isinstance(node, ast.ClassDef):
                found |= {f"x\u01c1{node.name}\u01c1{item.name}": ast.dump(item) for item in node.body
                          if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef))}
        return found
    before, after = functions(old), functions(new)
    return sorted(name for name, code in after.items() if before.get(name) != code)


def main(argv: list[str] | None = None) -> int:
    from pipeline_common.script_support import ArgumentParser  # wrong arguments exit 78, not 2

    parser = ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keep", type=Path, help="work folder to use and keep (default: a temporary one, removed)")
    parser.add_argument("--workers", type=int, default=1, help="mutants tested at once (default 1)")
    parser.add_argument("--target", type=float, default=90.0, help="score (percent killed) to pass (default 90)")
    parser.add_argument("--json", type=Path, help="also write the score and survivors to this file")
    parser.add_argument("--module", action="append", choices=RULE_MODULES, metavar="MODULE",
                        help="mutate only this rule module (repeatable; default: all of them)")
    parser.add_argument("--report-only", action="store_true",
                        help="run nothing: report the results the --keep folder holds")
    parser.add_argument("--restage", action="store_true",
                        help="copy the tree into the --keep folder again (after tests changed); results are reset")
    parser.add_argument("--retest", action="store_true",
                        help="copy the test files again into the --keep folder and run only the mutants that "
                             "survived there or were not checked (after tests were added; no test file may be added or removed)")
    parser.add_argument("--timeout-multiplier", type=float, default=15.0,
                        help="a mutant whose tests run this many times longer than the clean run is a timeout "
                             "(mutmut's default 15)")
    args = parser.parse_args(argv)
    if (args.report_only or args.retest) and args.keep is None:
        parser.error("--report-only and --retest need --keep DIR")
    patterns = [p for p in MUTANTS if not args.module or any(p.startswith(m + ".") for m in args.module)]
    if os.name == "nt":
        print("mutmut needs fork(): run this on Linux or macOS (WSL works)", file=sys.stderr)
        return 78

    work = args.keep or Path(tempfile.mkdtemp(prefix="mutation_"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        if args.restage and not args.report_only and (work / "mutants").is_dir():  # only a folder this script made
            for child in work.iterdir():
                shutil.rmtree(child) if child.is_dir() else child.unlink()
        if not (work / "mutants").exists() and not args.report_only:
            tests = stage(work, args.timeout_multiplier, args.module)
        else:
            tests = [t for t in TESTS if (work / t).exists()]
        env = {**os.environ, "PIPELINE_CONFIG": str(work / "mutants" / "pipeline.yaml"), "PYTHONDONTWRITEBYTECODE": "1"}
        started = time.monotonic()
        if not args.report_only:
            modules = args.module or RULE_MODULES
            print(f"==> mutmut over {', '.join(modules)}; tests: {' '.join(tests)} (work folder {work})", flush=True)
            names = patterns
            if args.retest:
                names = retest_names(work, env, tests, patterns)
                print(f"==> checking {len(names)} mutants (survived or not checked yet)", flush=True)
            log = work / "mutmut-run.log"
            with log.open("a", encoding="utf-8") as out:
                if names:
                    subprocess.run([str(Path(sys.executable).with_name("mutmut")), "run", "--max-children",
                                    str(args.workers), *names], cwd=work, env=env, check=False, stdout=out,
                                   stderr=subprocess.STDOUT)
        elapsed = time.monotonic() - started
        found = {k: v for k, v in results(work, env).items() if any(fnmatch.fnmatch(k, p) for p in patterns)}
        counted = {k: v for k, v in found.items() if v not in ("not checked", "skipped")}
        killed = [k for k, v in counted.items() if v in ("killed", "caught by type check")]
        timeouts = sorted(k for k, v in counted.items() if v == "timeout")
        survivors = sorted(k for k, v in counted.items() if v in ("survived", "no tests"))
        # A timeout is a mutant that made the tests hang (an endless loop): killed, by mutmut's rules. On a
        # busy machine a slow run can look the same, so they are listed apart and counted as killed.
        score = 100.0 * (len(killed) + len(timeouts)) / len(counted) if counted else 0.0
        per_module: dict[str, list[int]] = {}
        for name, status in counted.items():
            module = re.split(r"\.x[_ǁ]", name)[0]
            tally = per_module.setdefault(module, [0, 0])
            tally[1] += 1
            tally[0] += status in ("killed", "timeout", "caught by type check")  # timeouts: see score
        for module, (k, n) in sorted(per_module.items()):
            print(f"  {module}: {k}/{n} killed ({100.0 * k / n:.1f}%)")
        if not args.report_only:
            print(f"run took {elapsed / 60:.1f} min")
        print(f"score: {len(killed) + len(timeouts)}/{len(counted)} mutants killed ({score:.1f}%; {len(timeouts)} of them "
              f"by timeout); {len(survivors)} survived or reached by no test")
        for name in timeouts:
            print(f"  timeout: {name}")
        for name in survivors:
            print(f"  survived: {name} ({counted[name]})")
        print(f"see one: cd {work} && {Path(sys.executable).with_name('mutmut')} show <name>" if args.keep else
              "(re-run with --keep DIR to inspect survivors with `mutmut show <name>`)")
        if args.json:
            args.json.write_text(json.dumps({"score": round(score, 1), "killed": len(killed), "timeouts": timeouts,
                                             "minutes": None if args.report_only else round(elapsed / 60, 1),
                                             "total": len(counted), "per_module": per_module,
                                             "survivors": {k: counted[k] for k in survivors}}, indent=2) + "\n",
                                 encoding="utf-8")
        return 0 if score >= args.target else 1
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
