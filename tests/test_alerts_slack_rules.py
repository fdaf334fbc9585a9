"""Slack as it really answers: one message per second per webhook, Block Kit's ten fields per section,
mrkdwn that a clip must not break, and a send that stays inside a sensor tick's time."""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestration.alerts import blocks
from orchestration.alerts.slack import SlackAlerts
from pipeline_common.config import DEFAULT_ALERT_ROUTES
from tests.plugins.slack_server import accepted, block_kit_problems


def _slack(**overrides) -> SlackAlerts:
    settings_ = {"routes": DEFAULT_ALERT_ROUTES, "timeout_seconds": 2.0, "max_attempts": 3, "backoff_seconds": 0.05}
    return SlackAlerts(**{**settings_, **overrides})


@pytest.fixture
def hooks(slack_server, monkeypatch):
    for route in DEFAULT_ALERT_ROUTES:
        monkeypatch.setenv(f"SLACK_WEBHOOK_{route.upper()}", slack_server.webhook_url(route))
    return slack_server


def test_messages_to_one_webhook_are_paced_to_one_a_second(hooks, isolated_env):
    slack = _slack()
    started = time.monotonic()
    for n in range(4):
        assert slack.send("technical", "ERROR", f"alert {n}", blocks.message(f"alert {n}", "ERROR")) == "sent"
    assert hooks.paced == 0  # the double refuses anything faster than 1/s with 429: none was refused
    assert accepted(hooks) == 4 and time.monotonic() - started >= 2.9
    times = [r.received_at for r in hooks.requests]
    assert all(later - earlier >= 0.95 for earlier, later in zip(times, times[1:]))


def test_retry_after_past_the_budget_files_the_alert_inside_the_budget(hooks, isolated_env):
    hooks.misbehave(429, times=None, retry_after="120")
    started = time.monotonic()
    assert _slack(budget_seconds=5.0).send("technical", "ERROR", "t", blocks.message("t", "ERROR")) == "filed"
    assert time.monotonic() - started < 6  # never 120 s x attempts inside a 60 s sensor tick
    assert list((isolated_env / "alerts").glob("alerts_*.jsonl"))


def test_more_than_ten_fields_are_all_shown_in_sections_of_ten(hooks, isolated_env):
    fields = {f"export_{n:02d}": f"NOT CURRENT, data through 2026-03-{n + 1:02d}" for n in range(23)}
    payload = blocks.message("Data not current", "ERROR", fields=fields)
    assert block_kit_problems(payload) == []
    assert _slack().send("data_quality", "ERROR", "Data not current", payload) == "sent"
    [received] = hooks.for_route("data_quality")
    shown = [f["text"] for b in received["blocks"] for f in b.get("fields", [])]
    assert len(shown) == 23 and all(any(name in text for text in shown) for name in fields)


def test_fields_past_slack_block_limit_say_how_many_were_left_out():
    fields = {f"f{n}": "x" for n in range(105)}
    payload = blocks.message("many", "ERROR", fields=fields)
    assert block_kit_problems(payload) == []
    assert "5 more" in str(payload)


ENTITY_OR_LINK = st.sampled_from(["&", "<", ">", "a", "é", " ", "東", "\n"])


@settings(max_examples=300, deadline=None)
@given(text=st.text(alphabet=ENTITY_OR_LINK, min_size=0, max_size=80), limit=st.integers(min_value=2, max_value=60))
def test_raw_text_is_clipped_before_escaping_so_no_entity_is_ever_cut(text, limit):
    clipped = blocks.clip_raw(text, limit)
    assert len(clipped) <= limit
    body = clipped.removesuffix("…")
    # Every '&' starts a whole entity: unescaping gives back a prefix of the raw text.
    unescaped = body.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    assert text.startswith(unescaped)
    assert "<" not in body and ">" not in body
    assert all(body[i:].startswith(("&amp;", "&lt;", "&gt;")) for i, c in enumerate(body) if c == "&")


@settings(max_examples=300, deadline=None)
@given(parts=st.lists(st.one_of(st.text(alphabet="ab &", max_size=6).map(blocks.escape),
                                st.builds(lambda u, l: blocks.link(f"https://x/{u}", l),
                                          st.text(alphabet="abc", max_size=5), st.text(alphabet="ab&<", max_size=5))),
                      max_size=12),
       limit=st.integers(min_value=2, max_value=50))
def test_mrkdwn_is_never_clipped_inside_a_link_or_an_entity(parts, limit):
    text = "".join(parts)
    clipped = blocks.clip(text, limit)
    assert len(clipped) <= limit
    body = clipped.removesuffix("…") if len(text) > limit else clipped
    assert body.count("<") == body.count(">")  # no half link
    assert all(body[i:].startswith(("&amp;", "&lt;", "&gt;")) for i, c in enumerate(body) if c == "&")
