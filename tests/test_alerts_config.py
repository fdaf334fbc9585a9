"""The `alerts:` section of pipeline.yaml: mistakes fail with the entry and the field named."""

from __future__ import annotations

import pytest
import yaml

from pipeline_common.config import ConfigError, parse_pipeline_config
from pipeline_common.settings import repo_root


def _variant(tmp_path, mutate):
    raw = yaml.safe_load((repo_root() / "pipeline.yaml").read_text(encoding="utf-8"))
    mutate(raw["alerts"])
    path = tmp_path / "pipeline.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda a: a["routes"].update(technical="https://hooks.slack.com/services/T/B/X"),
         "route 'technical': expected an environment variable name"),
        (lambda a: a["sentinels"][0].update(route="pagers"), "alerts.sentinels (net_sales_drop), field 'route': unknown route 'pagers'"),
        (lambda a: a["sentinels"][1].update(threshold=0.3), "alerts.sentinels (market_without_orders), field 'threshold'"),
        (lambda a: a["sentinels"][0].pop("threshold"), "alerts.sentinels (net_sales_drop), field 'threshold'"),
        (lambda a: a.update(freshness_deadline="7.30"), "alerts, field 'freshness_deadline'"),
        (lambda a: a["sentinels"][2].update(severity="FATAL"), "field 'severity'"),
        (lambda a: a.update(warn_route=["time_series"]), "field 'warn_route': unknown key"),
    ],
)
def test_alert_config_errors_name_entry_and_field(tmp_path, mutate, expected):
    with pytest.raises(ConfigError) as info:
        parse_pipeline_config(_variant(tmp_path, mutate))
    assert expected in str(info.value)
    assert "hooks.slack.com" not in str(info.value)  # a pasted secret is not echoed back
