"""Slack Block Kit messages for the pipeline's alerts, kept inside Slack's documented size limits.

Pure functions: they build the JSON body of an incoming-webhook POST and never see a webhook URL.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

# Slack's limits (api.slack.com/reference/block-kit): a header's plain_text <= 150 chars, a
# section's text <= 3000, a section holds <= 10 fields of <= 2000 chars, a context <= 10 elements.
HEADER_MAX = 150
SECTION_TEXT_MAX = 3000
FIELD_MAX = 2000
MAX_FIELDS = 10
MAX_CONTEXT_ELEMENTS = 10
FALLBACK_TEXT_MAX = 3000

SEVERITY_ICONS = {"ERROR": ":red_circle:", "WARN": ":large_orange_circle:", "OK": ":large_green_circle:"}


def escape(text: str) -> str:
    """Escape the three characters Slack's mrkdwn treats as control characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def code_block(text: str, limit: int = SECTION_TEXT_MAX) -> str:
    # Six characters go to the fences; clipping first keeps a long error inside the block.
    return "```" + clip(escape(text), limit - 6) + "```"


def link(url: str, label: str) -> str:
    return f"<{url}|{escape(label)}>"


def header_block(text: str) -> dict[str, Any]:
    return {"type": "header", "text": {"type": "plain_text", "text": clip(text, HEADER_MAX), "emoji": True}}


def section_block(mrkdwn: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": clip(mrkdwn, SECTION_TEXT_MAX)}}


def fields_block(fields: Mapping[str, str]) -> dict[str, Any]:
    items = list(fields.items())[:MAX_FIELDS]
    return {
        "type": "section",
        "fields": [{"type": "mrkdwn", "text": clip(f"*{escape(k)}*\n{v}", FIELD_MAX)} for k, v in items],
    }


def context_block(elements: Sequence[str]) -> dict[str, Any]:
    return {
        "type": "context",
        "elements": [
            {"type": "mrkdwn", "text": clip(e, SECTION_TEXT_MAX)} for e in elements[:MAX_CONTEXT_ELEMENTS]
        ],
    }


def message(
    title: str,
    severity: str,
    summary: str = "",
    fields: Mapping[str, str] | None = None,
    details: str | None = None,
    context: Sequence[str] = (),
) -> dict[str, Any]:
    """One alert: header, optional summary, fields, a code block of details, a context line.

    `summary` and field values are mrkdwn the caller has escaped; `details` is raw text.
    """
    icon = SEVERITY_ICONS.get(severity, "")
    blocks: list[dict[str, Any]] = [header_block(f"{icon} {title}".strip())]
    if summary:
        blocks.append(section_block(summary))
    if fields:
        blocks.append(fields_block(fields))
    if details:
        blocks.append(section_block(code_block(details)))
    if context:
        blocks.append(context_block(context))
    # `text` is what notifications and screen readers show; Slack asks for it next to blocks.
    return {"text": clip(f"[{severity}] {title}", FALLBACK_TEXT_MAX), "blocks": blocks}
