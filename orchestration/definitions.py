"""The code location's one entry point: every domain's definitions, merged.

`dagster dev -w workspace.yaml` (what scripts/supervisor.py runs) and `dg dev` serve `defs` as the code
location `retail_sales`. Each domain package exposes
`build_defs(config) -> dg.Definitions`; add a domain by adding it to DOMAINS. Every asset gets
code references (orchestration/code_references.py), so the UI's "open source" finds its code.
"""

from __future__ import annotations

import dagster as dg

from orchestration import alerts, budget, exports, ingestion, maintenance, schedules, warehouse
from orchestration.code_references import with_code_references
from orchestration.resources import shared_resources
from pipeline_common.config import load_pipeline_config

DOMAINS = [
    ingestion,
    budget,
    schedules,
    maintenance,
    warehouse,
    exports,
    alerts,
]


def build_definitions() -> dg.Definitions:
    config = load_pipeline_config()
    domain_defs = [domain.build_defs(config) for domain in DOMAINS]
    merged = dg.Definitions.merge(*domain_defs, dg.Definitions(resources=shared_resources()))
    return with_code_references(merged)


defs = build_definitions()
