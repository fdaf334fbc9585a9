"""The code location's one entry point: every domain's definitions, merged.

`dagster dev -w workspace.yaml` (what scripts/supervisor.py runs) and `dg dev` serve `defs` as the
code location `retail_sales`. Each domain package exposes `build_defs(config) -> dg.Definitions`;
add a domain by adding it to DOMAINS.
"""

from __future__ import annotations

import dagster as dg

from orchestration import alerts, budget, exports, ingestion, ops, sensors, warehouse
from orchestration.resources import shared_resources
from pipeline_common.config import load_pipeline_config

DOMAINS = [
    ingestion,
    budget,
    ops,
    warehouse,
    exports,
    alerts,
    sensors,
]


def build_definitions() -> dg.Definitions:
    config = load_pipeline_config()
    domain_defs = [domain.build_defs(config) for domain in DOMAINS]
    return dg.Definitions.merge(*domain_defs, dg.Definitions(resources=shared_resources()))


defs = build_definitions()
