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
    """At most `limit` characters of mrkdwn, never ending inside an entity (`&amp;`) or a link (`<url|label>`)."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    opened = cut.rfind("<")
    if opened > cut.rfind(">"):  # a link or mention would lose its closing '>'
        cut = cut[:opened]
    amp = cut.rfind("&")
    if amp >= 0 and ";" not in cut[amp:]:  # an entity cut in two would show as '&am'
        cut = cut[:amp]
    return cut + "…"


def _clip_plain(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def clip_raw(text: str, limit: int) -> str:
    """Raw text escaped for mrkdwn and clipped to `limit` characters: clipped before escaping, so no
    entity is ever cut."""
    escaped = escape(text)
    if len(escaped) <= limit:
        return escaped
    budget, kept = limit - 1, []
    for char in text:
        piece = escape(char)
        if len(piece) > budget:
            break
        kept.append(piece)
        budget -= len(piece)
    return "".join(kept) + "…"


def code_block(text: str, limit: int = SECTION_TEXT_MAX) -> str:
    # Six characters go to the fences; clipping first keeps a long error inside the block.
    return "```" + clip_raw(text, limit - 6) + "```"


def link(url: str, label: str) -> str:
    return f"<{url}|{escape(label)}>"


def header_block(text: str) -> dict[str, Any]:
    return {"type": "header", "text": {"type": "plain_text", "text": _clip_plain(text, HEADER_MAX), "emoji": True}}


def section_block(mrkdwn: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": clip(mrkdwn, SECTION_TEXT_MAX)}}


def fields_block(fields: Mapping[str, str]) -> dict[str, Any]:
    """One section of at most MAX_FIELDS fields (see fields_blocks for more)."""
    items = list(fields.items())[:MAX_FIELDS]
    return {
        "type": "section",
        "fields": [{"type": "mrkdwn", "text": clip(f"*{escape(k)}*\n{v}", FIELD_MAX)} for k, v in items],
    }


MAX_FIELD_SECTIONS = 10
"""More fields than fit 10 sections (100) end in a line saying how many were left out."""


def fields_blocks(fields: Mapping[str, str]) -> list[dict[str, Any]]:
    """Every field, ten to a section (Slack's limit per section): none is dropped silently."""
    items = list(fields.items())
    shown = items[: MAX_FIELDS * MAX_FIELD_SECTIONS]
    blocks = [fields_block(dict(shown[i:i + MAX_FIELDS])) for i in range(0, len(shown), MAX_FIELDS)]
    if len(items) > len(shown):
        blocks.append(section_block(f"…and {len(items) - len(shown)} more not shown here"))
    return blocks


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
        blocks.extend(fields_blocks(fields))
    if details:
        blocks.append(section_block(code_block(details)))
    if context:
        blocks.append(context_block(context))
    # `text` is what notifications and screen readers show; Slack asks for it next to blocks.
    return {"text": clip(f"[{severity}] {title}", FALLBACK_TEXT_MAX), "blocks": blocks}
