"""Deliver alerts to Slack incoming webhooks, one per route; what cannot be delivered is filed.

The webhook URL is a secret: it is read from the environment at send time (the resource's
config holds only the variable's *name*), and no log line, exception text or file gets it.
An alert with no webhook, or one Slack refused or never answered, goes to the log and to
`$DATA_DIR/alerts/alerts_YYYYMMDD.jsonl`, so nothing is lost.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import hashlib
import re
import threading
import time
from typing import Any, Literal

import dagster as dg
import requests

from pipeline_common.backoff import exponential_delay
from pipeline_common.config import business_zone
from pipeline_common.files import append_line
from pipeline_common.secrets import scrub, scrub_data
from pipeline_common.settings import alerts_dir, env

MAX_RETRY_AFTER_SECONDS = 120.0
_SLACK_ERROR = re.compile(r"[a-z][a-z0-9_]{0,63}")


def slack_error_token(body: str) -> str:
    """Slack's answer by its error token (`invalid_payload`, `no_service`, `channel_is_archived`), quoted only
    when it is one; any other body (a proxy's page, an echo of the request) is never quoted, only its size."""
    text = (body or "").strip()
    if _SLACK_ERROR.fullmatch(text):
        return repr(text)
    return f"(a body of {len(body or '')} characters, not quoted)" if text else "(no body)"

MIN_SECONDS_BETWEEN_MESSAGES = 1.0
"""Slack's incoming webhooks take about one message per second each; more answer 429."""
_last_post: dict[str, float] = {}  # hash of a webhook URL -> monotonic time of its last post
_pace_lock = threading.Lock()

Outcome = Literal["sent", "filed"]

_fallback_logger = logging.getLogger("orchestration.alerts")


class _DropUrllib3Debug(logging.Filter):
    """urllib3 logs every request line (with the webhook's secret path) at DEBUG: drop those."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno > logging.DEBUG


_URLLIB3_LOGGER = logging.getLogger("urllib3.connectionpool")
if not any(isinstance(f, _DropUrllib3Debug) for f in _URLLIB3_LOGGER.filters):
    _URLLIB3_LOGGER.addFilter(_DropUrllib3Debug())


class ScrubbedLog:
    """A logger (Python's or Dagster's) whose every line is scrubbed of secrets first."""

    def __init__(self, log: Any):
        self._log = log

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._log, name)
        if name not in ("debug", "info", "warning", "error", "critical", "exception"):
            return method
        return lambda message, *args, **kwargs: method(scrub(str(message) % args if args else message), **kwargs)


def scrubbed(log: Any) -> ScrubbedLog:
    return log if isinstance(log, ScrubbedLog) else ScrubbedLog(log)


def _pace(url: str, deadline: float) -> bool:
    """Wait until this webhook's last message is a second old; False when that would pass `deadline`."""
    key = hashlib.sha256(url.encode()).hexdigest()
    with _pace_lock:
        now = time.monotonic()
        ready = _last_post.get(key, 0.0) + MIN_SECONDS_BETWEEN_MESSAGES
        start = max(now, ready)
        if start > deadline:
            return False
        _last_post[key] = start  # reserve the slot before sleeping, so threads queue one a second
    if start > now:
        time.sleep(start - now)
    return True


def _posted(url: str) -> None:
    """The post is over: the next one to this webhook counts its second from here (Slack counts arrivals)."""
    with _pace_lock:
        _last_post[hashlib.sha256(url.encode()).hexdigest()] = time.monotonic()


class SlackAlerts(dg.ConfigurableResource):
    """Routes alerts to Slack. `routes` maps a route to the NAME of the env var holding its webhook."""

    routes: dict[str, str]
    timeout_seconds: float = 10.0
    max_attempts: int = 4
    backoff_seconds: float = 2.0
    budget_seconds: float = 20.0
    """All attempts, waits and Retry-After of one send: a sensor tick (60 s) stays inside its deadline.
    What does not get through in time is filed, never lost."""

    def send(
        self,
        route: str,
        severity: str,
        title: str,
        payload: dict[str, Any],
        log: logging.Logger | dg.DagsterLogManager | None = None,
    ) -> Outcome:
        """Post `payload` (Block Kit) to the route's webhook; file it when that is not possible."""
        log = scrubbed(log or _fallback_logger)
        # An alert quotes failure messages; whatever a library put in them, no secret leaves here.
        title, payload = scrub(title), scrub_data(payload)
        var = self.routes.get(route)
        if var is None:
            return self._file(route, severity, title, payload, log, f"unknown route {route!r}")
        url = env(var)
        if not url:
            return self._file(route, severity, title, payload, log, f"{var} is not set")
        problem = self._post(url, payload, log)
        if problem is None:
            log.info(f"alert sent to route {route}: {title}")
            return "sent"
        return self._file(route, severity, title, payload, log, f"Slack delivery failed: {problem}")

    # --- delivery ---------------------------------------------------------------------------

    def _post(self, url: str, payload: dict[str, Any], log: Any) -> str | None:
        """None when Slack accepted the message, else why not (never containing the URL)."""
        from pipeline_common.tls import certificate_failure, use_os_trust_store

        use_os_trust_store()
        problem = "no attempt made"
        deadline = time.monotonic() + self.budget_seconds
        attempt = 0
        for attempt in range(1, self.max_attempts + 1):
            delay = self._backoff(attempt)
            if not _pace(url, deadline - 1.0):
                problem = f"{problem}; out of time ({self.budget_seconds:.0f} s budget)"
                break
            timeout = max(1.0, min(self.timeout_seconds, deadline - time.monotonic()))
            try:
                try:
                    response = requests.post(url, json=payload, timeout=timeout)
                finally:
                    _posted(url)
            except (requests.Timeout, requests.ConnectionError) as exc:
                reason = certificate_failure(exc)
                if reason is not None:  # not retried: the machine does not trust the certificate it was shown
                    return (f"the certificate of the Slack webhook's host could not be verified ({reason}); if a "
                            "corporate proxy inspects HTTPS, its root CA belongs in the Windows certificate store")
                # The exception's text quotes the URL; its class name says enough.
                problem, retryable = type(exc).__name__, True
            except requests.RequestException as exc:
                problem, retryable = type(exc).__name__, False
            else:
                if response.status_code == 200:
                    return None
                problem = f"HTTP {response.status_code} {slack_error_token(response.text)}"
                retryable = response.status_code == 429 or response.status_code >= 500
                delay = _retry_after(response) if response.status_code == 429 else delay
            if not retryable or attempt == self.max_attempts:
                break
            if time.monotonic() + delay > deadline - 1.0:
                problem = f"{problem}; the next try (in {delay:.0f} s) would pass the {self.budget_seconds:.0f} s budget"
                break
            log.warning(f"Slack attempt {attempt}/{self.max_attempts} failed ({problem}); retry in {delay:.1f}s")
            time.sleep(delay)
        return f"{problem} after {attempt} attempt(s)"

    def _backoff(self, attempt: int) -> float:
        # Exponential with jitter so several sensors hitting a Slack outage do not retry in step.
        return exponential_delay(attempt - 1, self.backoff_seconds, spread=0.2)

    # --- the fallback -----------------------------------------------------------------------

    def _file(self, route: str, severity: str, title: str, payload: dict[str, Any], log: Any, why: str) -> Outcome:
        now = dt.datetime.now(business_zone())
        record = {"ts": now.isoformat(), "route": route, "severity": severity, "title": title, "payload": payload}
        folder = alerts_dir()
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"alerts_{now:%Y%m%d}.jsonl"
        line = json.dumps(record, ensure_ascii=False, default=str) + "\n"
        # Sensors and run workers file alerts concurrently: one locked write per record.
        append_line(path, line)
        log.warning(f"alert [{route}/{severity}] {title} ({why}); written to {path.name}: {payload.get('text', '')}")
        return "filed"


def _retry_after(response: requests.Response) -> float:
    try:
        seconds = float(response.headers.get("Retry-After", "1"))
    except ValueError:
        seconds = 1.0
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_SECONDS)


def slack_alerts_from_config(alerts_config: Any) -> SlackAlerts:
    return SlackAlerts(
        routes=dict(alerts_config.routes),
        timeout_seconds=alerts_config.timeout_seconds,
        max_attempts=alerts_config.max_attempts,
        backoff_seconds=alerts_config.backoff_seconds,
    )
