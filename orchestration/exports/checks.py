"""`export_is_current` on every export asset: the freshness verdict (pipeline_common/freshness.py) right
after the export is rebuilt, ERROR once the deadline has passed, WARN before it; it blocks nothing."""

from __future__ import annotations

import dagster as dg

from orchestration.instance_freshness import freshness_report
from pipeline_common import freshness
from pipeline_common.config import Export, PipelineConfig
from orchestration.clock import business_now

EXPORT_CHECK = "export_is_current"


def export_check_result(config: PipelineConfig, report: freshness.FreshnessReport, export: Export) -> dg.AssetCheckResult:
    status = report.export(export.asset)
    late = freshness.past_deadline(config, report.at)
    return dg.AssetCheckResult(
        passed=status.current,
        severity=dg.AssetCheckSeverity.ERROR if late else dg.AssetCheckSeverity.WARN,
        description=("current" if status.current else f"not current: {status.reason}"),
        metadata={
            "data_through": str(status.data_through or "none"),
            "expected_date": str(min((s.expected_date for s in report.sources), default="none")),
            "rebuilt_at": status.rebuilt_at.isoformat() if status.rebuilt_at else "never",
            "reason": status.reason or "current",
            "late": ", ".join(f"{s.label}: {s.why()}" for s in report.late_sources) or "none",
            "evaluated_at": report.at.isoformat(),
        },
    )


def build_export_check(config: PipelineConfig, export: Export) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=dg.AssetKey(export.asset),
        name=EXPORT_CHECK,
        blocking=False,
        description=(
            f"The extract holds every covered market's expected file (due times in pipeline.yaml) and was rebuilt "
            f"after the newest was synced. ERROR from {config.alerts.freshness_deadline}, WARN before."
        ),
    )
    def _export_is_current(context) -> dg.AssetCheckResult:
        return export_check_result(config, freshness_report(context.instance, config, business_now()), export)

    return _export_is_current
