"""Fixture `slack_server`: a local stand-in for Slack incoming webhooks on 127.0.0.1.

It speaks the webhook protocol (POST JSON to /services/..., `200 ok`; `400 invalid_payload`
/ `invalid_blocks` for bodies Slack would reject; `404 no_service` for an unknown hook),
records every request, and can be told to answer 500/429 or to sleep past the client's timeout.
Like Slack it takes about one message per second per webhook: a faster one is answered 429 with
Retry-After: 1.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest

from tests.plugins.loopback_http import serve_on_loopback

HEADER_MAX, SECTION_TEXT_MAX, FIELD_MAX, MAX_FIELDS, MAX_CONTEXT, MAX_BLOCKS = 150, 3000, 2000, 10, 10, 50
TEXT_TYPES = {"plain_text", "mrkdwn"}


def block_kit_problems(body: Any) -> list[str]:
    """What Slack would reject in a webhook body (the subset of Block Kit the project uses)."""
    if not isinstance(body, dict) or not isinstance(body.get("text", ""), str):
        return ["body must be an object whose 'text' is a string"]
    blocks = body.get("blocks")
    if blocks is None:
        return [] if body.get("text") else ["no text and no blocks"]
    if not isinstance(blocks, list) or not 0 < len(blocks) <= MAX_BLOCKS:
        return [f"blocks must be a list of 1..{MAX_BLOCKS}"]
    problems: list[str] = []
    for i, block in enumerate(blocks):
        kind = block.get("type")
        if kind == "header":
            problems += _text_problems(f"blocks[{i}].text", block.get("text"), {"plain_text"}, HEADER_MAX)
        elif kind == "section":
            if "text" not in block and "fields" not in block:
                problems.append(f"blocks[{i}]: section needs text or fields")
            if "text" in block:
                problems += _text_problems(f"blocks[{i}].text", block["text"], TEXT_TYPES, SECTION_TEXT_MAX)
            fields = block.get("fields", [])
            if len(fields) > MAX_FIELDS:
                problems.append(f"blocks[{i}]: more than {MAX_FIELDS} fields")
            for j, item in enumerate(fields):
                problems += _text_problems(f"blocks[{i}].fields[{j}]", item, TEXT_TYPES, FIELD_MAX)
        elif kind == "context":
            elements = block.get("elements", [])
            if not 0 < len(elements) <= MAX_CONTEXT:
                problems.append(f"blocks[{i}]: context needs 1..{MAX_CONTEXT} elements")
            for j, item in enumerate(elements):
                problems += _text_problems(f"blocks[{i}].elements[{j}]", item, TEXT_TYPES, SECTION_TEXT_MAX)
        else:
            problems.append(f"blocks[{i}]: unexpected block type {kind!r}")
    return problems


def _text_problems(where: str, obj: Any, types: set[str], limit: int) -> list[str]:
    if not isinstance(obj, dict) or obj.get("type") not in types:
        return [f"{where}: expected a text object of type {sorted(types)}"]
    text = obj.get("text")
    if not isinstance(text, str) or not 0 < len(text) <= limit:
        return [f"{where}: text must be 1..{limit} characters"]
    return []


@dataclass
class SlackRequest:
    path: str
    body: Any
    received_at: float


@dataclass
class FakeSlack:
    """The running server: hooks it knows, what it received, how it should misbehave."""

    url: str = ""  # http://127.0.0.1:port, set when the server starts
    requests: list[SlackRequest] = field(default_factory=list)
    status: int = 200
    failures_left: int | None = None  # answer `status` this many times, then 200 (None: always)
    delay_seconds: float = 0.0
    retry_after: str | None = None
    hooks: set[str] = field(default_factory=set)
    pace_seconds: float = 1.0  # Slack's incoming webhooks: about one message per second each; faster is 429
    last_accepted: dict[str, float] = field(default_factory=dict)
    paced: int = 0  # messages refused for coming too fast
    lock: threading.Lock = field(default_factory=threading.Lock)

    def webhook_url(self, route: str) -> str:
        path = f"/services/T0PIPELINE/B0{route.upper()}/s3cr3t{route}Xq9"
        self.hooks.add(path)
        return f"{self.url}{path}"

    def for_route(self, route: str) -> list[Any]:
        return [r.body for r in self.requests if f"/B0{route.upper()}/" in r.path]

    def misbehave(self, status: int = 500, times: int | None = None, delay: float = 0.0, retry_after: str | None = None):
        self.status, self.failures_left, self.delay_seconds, self.retry_after = status, times, delay, retry_after

    def _record(self, path: str, raw: bytes) -> Any:
        try:
            body = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            body = None
        with self.lock:
            self.requests.append(SlackRequest(path, body, time.monotonic()))
        return body

    def _answer(self, path: str, body: Any) -> tuple[int, str, dict[str, str]]:
        if body is None:
            return 400, "invalid_payload", {}
        with self.lock:
            failing = self.status != 200 and (self.failures_left is None or self.failures_left > 0)
            if failing and self.failures_left is not None:
                self.failures_left -= 1
        if path not in self.hooks:
            return 404, "no_service", {}
        if block_kit_problems(body):
            return 400, "invalid_blocks", {}
        if failing:
            headers = {"Retry-After": self.retry_after} if self.retry_after else {}
            return self.status, "rate_limited" if self.status == 429 else "internal_error", headers
        with self.lock:
            now = time.monotonic()
            if now - self.last_accepted.get(path, -1e9) < self.pace_seconds:
                self.paced += 1
                return 429, "rate_limited", {"Retry-After": "1"}
            self.last_accepted[path] = now
        return 200, "ok", {}


def _handler(fake: FakeSlack) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server naming
            raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            body = fake._record(self.path, raw)
            if fake.delay_seconds:
                time.sleep(fake.delay_seconds)
            status, text, headers = fake._answer(self.path, body)
            data = text.encode("utf-8")
            try:
                self.send_response(status)
                self.send_header("Content-Type", "text/plain; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (timeout test): nothing to answer

        def log_message(self, *args: Any) -> None:
            pass  # keep test output clean

    return Handler


def accepted(fake: FakeSlack) -> int:
    """How many messages Slack took (the ones refused with 429 for pacing are recorded too)."""
    return sum(1 for r in fake.requests if r.path in fake.hooks) - fake.paced


@pytest.fixture
def slack_server() -> Iterator[FakeSlack]:
    fake = FakeSlack()
    with serve_on_loopback(_handler(fake), "fake-slack") as url:
        fake.url = url
        yield fake
