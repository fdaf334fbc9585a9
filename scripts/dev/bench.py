"""Run one of the project's benchmarks: `python scripts/dev/bench.py <name> [args]` runs scripts/dev/bench_<name>.py's main(argv).

Benchmarks are found by file name, so adding `scripts/dev/bench_foo.py` with a `main(argv) -> int` makes
`python scripts/dev/bench.py foo` work. `python scripts/dev/bench.py --list` shows what is there.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType

SCRIPTS_DIR = Path(__file__).resolve().parent
PREFIX = "bench_"
EXIT_CONFIG = 78  # contract section 8: wrong arguments are a configuration error


def available() -> dict[str, Path]:
    return {path.stem.removeprefix(PREFIX): path for path in sorted(SCRIPTS_DIR.glob(f"{PREFIX}*.py"))}


def load(path: Path) -> ModuleType:
    return importlib.import_module(f"{__package__ or 'scripts.dev'}.{path.stem}")


def usage(benchmarks: dict[str, Path]) -> str:
    names = "\n".join(f"  {name:<12} scripts/dev/{path.name}" for name, path in benchmarks.items()) or "  (none found)"
    return (
        "usage: python scripts/dev/bench.py <name> [args...]   (python scripts/dev/bench.py <name> --help for its options)\n"
        f"benchmarks:\n{names}"
    )


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    benchmarks = available()
    if not argv or argv[0] in ("-h", "--help", "--list"):
        print(usage(benchmarks))
        return 0
    name, rest = argv[0], argv[1:]
    if name not in benchmarks:
        print(f"unknown benchmark {name!r}\n{usage(benchmarks)}", file=sys.stderr)
        return EXIT_CONFIG
    module = load(benchmarks[name])
    if not callable(getattr(module, "main", None)):
        print(f"scripts/dev/{benchmarks[name].name} has no main(argv)", file=sys.stderr)
        return EXIT_CONFIG
    return int(module.main(rest) or 0)


if __name__ == "__main__":
    sys.exit(main())
