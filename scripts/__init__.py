"""Desktop operations: start, supervise, serve, check, migrate and register the pipeline (see README).

Each module here is a script, run by path (`python scripts/<name>.py`); the package exists so that
scripts and tests share code by import (`from scripts.supervisor import prepare_home`), never by
editing the import path. Developer tools and benchmarks are in scripts/dev/.
"""
