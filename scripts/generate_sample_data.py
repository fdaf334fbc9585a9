"""Generate a realistic, deterministic landing tree (Azure container layout) for every configured market.

Orders, reference data, the monthly Single Customer View and the SharePoint budget workbooks follow
the contract (sections 2 and 4); markets, currencies and datasets come from pipeline.yaml.
Run `python scripts/generate_sample_data.py --help`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import re
import sys
import zipfile
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv


from pipeline_common.config import DatasetType, PipelineConfig, load_pipeline_config, today_in  # noqa: E402
from pipeline_common.files import atomic_write  # noqa: E402
from pipeline_common.settings import azure_connection_string, azure_container, landing_dir  # noqa: E402
from pipeline_common.script_support import ArgumentParser  # noqa: E402  (wrong arguments exit 78)

ORACLE_ROOT = "raw_data/DWH/Oracle"
SHAREPOINT_FOLDER = "sharepoint"
BUDGET_WORKBOOK = "Daily Sales Budget {year}.xlsx"

# Local price per GBP 1 of list price; the only per-currency knowledge the generator has.
PRICE_LEVEL = {"GBP": 1.0, "EUR": 1.17, "JPY": 190.0}
WHOLE_UNIT_CURRENCIES = {"JPY"}

CHANNELS = np.array(["TV", "WEB", "APP", "PHONE"])
CHANNEL_SHARE = np.array([0.35, 0.35, 0.20, 0.10])
STATUSES = np.array(["COMPLETED", "SHIPPED", "CANCELLED", "RETURNED"])
COMPLETED, SHIPPED, CANCELLED, RETURNED = range(4)
NEW_STATUS_SHARE = np.array([0.50, 0.42, 0.04, 0.04])
SALES_STATUS_SHARE = NEW_STATUS_SHARE[COMPLETED] + NEW_STATUS_SHARE[SHIPPED]
LINES_PER_ORDER_SHARE = np.array([0.55, 0.25, 0.12, 0.08])
QUANTITY_SHARE = np.array([0.80, 0.14, 0.04, 0.02])
# Mon..Sun: TV shopping peaks at the weekend.
WEEKDAY_FACTOR = np.array([1.0, 1.0, 1.0, 1.0, 1.05, 1.45, 1.35])
# Order hour of day: a late-morning and an evening (prime-time TV) peak.
HOUR_WEIGHT = np.array(
    [1, 0.6, 0.4, 0.3, 0.3, 0.5, 1.2, 2.5, 3.5, 4.5, 5.5, 6, 6, 5.5, 5, 4.8, 5, 5.5, 6.5, 8, 8.5, 7.5, 5, 2.5]
)
NEW_CUSTOMER_SHARE = 0.06
REISSUE_SHARE = 0.04  # re-issued lines per day, as a share of the day's own lines
REISSUE_MAX_AGE_DAYS = 7

# Category: (GBP price band low, high); a few brands each.
CATEGORIES = {
    "Jewellery": (19.0, 399.0),
    "Beauty": (8.0, 60.0),
    "Home": (15.0, 150.0),
    "Fashion": (15.0, 120.0),
    "Kitchen": (10.0, 200.0),
    "Electronics": (25.0, 300.0),
    "Garden": (10.0, 90.0),
    "Crafts": (5.0, 50.0),
}
BRANDS = ["Aurelia", "Northwind", "Casa Verde", "Kitsune", "Bellamy & Co", "Strand", "Oak & Ember", "Lumen"]
ADJECTIVES = ["Classic", "Deluxe", "Everyday", "Heritage", "Signature", "Compact", "Luxe", "Essential"]
NOUNS = {
    "Jewellery": ["Pendant", "Bracelet", "Ring", "Earrings, Pair"],
    "Beauty": ["Serum", "Face Cream", "Lip Set", "Cleanser"],
    "Home": ["Throw", "Cushion, Set of 2", "Lamp", "Candle"],
    "Fashion": ["Cardigan", "Scarf", "Dress", "Jacket"],
    "Kitchen": ["Pan Set", "Knife Block", "Blender", "Air Fryer"],
    "Electronics": ["Headphones", "Speaker", "Tablet Case", "Smart Plug"],
    "Garden": ["Planter", "Hose, 20m", "Solar Lights", "Tool Kit"],
    "Crafts": ["Yarn Bundle", "Stamp Set", "Paint Kit", "Sewing Box"],
}
PRODUCT_COUNT = 200
SEGMENTS = np.array(["New", "Occasional", "Regular", "Loyal", "VIP"])

ORDERS_SCHEMA = pa.schema(
    [
        ("order_id", pa.int64()),
        ("order_line_id", pa.int64()),
        ("order_date", pa.date32()),
        ("order_ts", pa.timestamp("s")),
        ("customer_id", pa.int64()),
        ("product_sku", pa.string()),
        ("channel", pa.string()),
        ("quantity", pa.int64()),
        ("unit_price", pa.decimal128(14, 2)),
        ("currency", pa.string()),
        ("status", pa.string()),
    ]
)
_EPOCH = dt.date(1970, 1, 1)


# --- randomness: one independent, reproducible stream per (seed, market, purpose, day) ----------


def _rng(seed: int, *keys: object) -> np.random.Generator:
    parts = [seed] + [zlib.crc32(str(k).encode("utf-8")) for k in keys]
    return np.random.default_rng(parts)


def _days(start: dt.date, end: dt.date) -> list[dt.date]:
    return [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]


def _epoch_days(day: dt.date) -> int:
    return (day - _EPOCH).days


# --- products ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Catalog:
    sku: np.ndarray
    name: np.ndarray
    category: np.ndarray
    brand: np.ndarray
    price_gbp: np.ndarray
    popularity: np.ndarray  # probability of each SKU on an order line

    def local_prices(self, currency: str) -> np.ndarray:
        """List prices in the market currency: psychological .99 endings, whole units where customary."""
        level = PRICE_LEVEL.get(currency, 1.0)
        raw = self.price_gbp * level
        if currency in WHOLE_UNIT_CURRENCIES:
            return np.maximum(np.round(raw / 10.0) * 10.0, 10.0)
        return np.maximum(np.ceil(raw) - 0.01, 0.99)

    def expected_line_value_gbp(self) -> float:
        mean_quantity = float(np.dot(np.arange(1, len(QUANTITY_SHARE) + 1), QUANTITY_SHARE))
        return float(np.dot(self.popularity, self.price_gbp)) * mean_quantity


def build_catalog(seed: int) -> Catalog:
    rng = _rng(seed, "catalog")
    names = list(CATEGORIES)
    category_idx = rng.integers(0, len(names), PRODUCT_COUNT)
    low = np.array([CATEGORIES[n][0] for n in names])[category_idx]
    high = np.array([CATEGORIES[n][1] for n in names])[category_idx]
    # Log-uniform inside the band: many cheap items, a few expensive ones.
    price = np.exp(rng.uniform(np.log(low), np.log(high)))
    price_gbp = np.ceil(price) - 0.01
    category = np.array(names)[category_idx]
    brand = np.array(BRANDS)[rng.integers(0, len(BRANDS), PRODUCT_COUNT)]
    adjective = np.array(ADJECTIVES)[rng.integers(0, len(ADJECTIVES), PRODUCT_COUNT)]
    noun_pick = rng.integers(0, 4, PRODUCT_COUNT)
    noun = np.array([NOUNS[c][k] for c, k in zip(category, noun_pick, strict=True)])
    name = np.char.add(np.char.add(np.char.add(brand, " "), np.char.add(adjective, " ")), noun)
    prefix = np.char.upper(np.array([c[:3] for c in category]))
    sku = np.char.add(np.char.add(prefix, "-"), np.char.zfill(np.arange(1, PRODUCT_COUNT + 1).astype(str), 5))
    popularity = rng.zipf(1.6, PRODUCT_COUNT).astype(float)
    popularity = np.minimum(popularity, 50.0)
    return Catalog(sku, name, category, brand, price_gbp, popularity / popularity.sum())


# --- orders ------------------------------------------------------------------------------------


@dataclass
class MarketState:
    """What carries over from one day to the next inside one market: ids, customers, recent lines."""

    market: str
    currency: str
    next_order_id: int = 10_000_001
    next_line_id: int = 50_000_001
    next_new_customer_id: int = 9_000_001
    existing_customers: int = 0
    new_customer_ids: list[np.ndarray] = field(default_factory=list)
    new_customer_first_day: list[np.ndarray] = field(default_factory=list)
    recent: list[dict[str, np.ndarray]] = field(default_factory=list)
    rows_written: int = 0


def _order_lines(rng: np.random.Generator, line_count: int) -> np.ndarray:
    """Line count per order, cut so the lines add up to exactly `line_count`."""
    sizes = rng.choice(np.arange(1, 5), size=line_count, p=LINES_PER_ORDER_SHARE)
    ends = np.cumsum(sizes)
    orders = int(np.searchsorted(ends, line_count)) + 1
    sizes = sizes[:orders]
    sizes[-1] -= ends[orders - 1] - line_count
    return sizes


def _customers_for(rng: np.random.Generator, state: MarketState, orders: int, day: dt.date) -> np.ndarray:
    is_new = rng.random(orders) < NEW_CUSTOMER_SHARE
    new_count = int(is_new.sum())
    new_ids = np.arange(state.next_new_customer_id, state.next_new_customer_id + new_count, dtype=np.int64)
    state.next_new_customer_id += new_count
    known_new = np.concatenate(state.new_customer_ids) if state.new_customer_ids else np.empty(0, np.int64)
    pool = state.existing_customers + len(known_new)
    pick = rng.integers(0, pool, orders - new_count)
    returning = np.where(
        pick < state.existing_customers,
        100_001 + pick,
        known_new[np.clip(pick - state.existing_customers, 0, max(len(known_new) - 1, 0))]
        if len(known_new)
        else 100_001 + pick,
    )
    customers = np.empty(orders, dtype=np.int64)
    customers[is_new] = new_ids
    customers[~is_new] = returning
    state.new_customer_ids.append(new_ids)
    state.new_customer_first_day.append(np.full(new_count, _epoch_days(day), dtype=np.int32))
    return customers


def day_line_count(rng: np.random.Generator, day: dt.date, rows_per_day: int) -> int:
    return max(1, int(round(rows_per_day * WEEKDAY_FACTOR[day.weekday()] * rng.uniform(0.95, 1.05))))


def new_order_lines(
    seed: int, state: MarketState, catalog: Catalog, prices: np.ndarray, day: dt.date, rows_per_day: int
) -> dict[str, np.ndarray]:
    """The lines ordered on `day` (columns as numpy arrays; codes index CHANNELS, STATUSES, catalog)."""
    rng = _rng(seed, state.market, "orders", day.isoformat())
    lines = day_line_count(rng, day, rows_per_day)
    sizes = _order_lines(rng, lines)
    orders = len(sizes)
    order_ids = np.arange(state.next_order_id, state.next_order_id + orders, dtype=np.int64)
    state.next_order_id += orders
    seconds = rng.choice(24, size=orders, p=HOUR_WEIGHT / HOUR_WEIGHT.sum()) * 3600 + rng.integers(0, 3600, orders)
    per_order = {
        "order_id": order_ids,
        "order_ts": _epoch_days(day) * 86_400 + seconds.astype(np.int64),
        "customer_id": _customers_for(rng, state, orders, day),
        "channel": rng.choice(len(CHANNELS), size=orders, p=CHANNEL_SHARE).astype(np.int8),
        "status": rng.choice(len(STATUSES), size=orders, p=NEW_STATUS_SHARE).astype(np.int8),
    }
    columns = {name: np.repeat(values, sizes) for name, values in per_order.items()}
    sku = rng.choice(len(catalog.sku), size=lines, p=catalog.popularity)
    columns["order_line_id"] = np.arange(state.next_line_id, state.next_line_id + lines, dtype=np.int64)
    state.next_line_id += lines
    columns["sku"] = sku
    columns["quantity"] = rng.choice(np.arange(1, 5), size=lines, p=QUANTITY_SHARE).astype(np.int64)
    columns["unit_price"] = prices[sku]
    columns["order_date"] = np.full(lines, _epoch_days(day), dtype=np.int32)
    return columns


def reissued_lines(seed: int, state: MarketState, day: dt.date, own_lines: int) -> dict[str, np.ndarray] | None:
    """Lines of the previous 1-7 days whose status moved on, re-sent with the newer status."""
    if not state.recent:
        return None
    rng = _rng(seed, state.market, "reissue", day.isoformat())
    statuses = np.concatenate([d["status"] for d in state.recent])
    eligible = np.flatnonzero((statuses == SHIPPED) | (statuses == COMPLETED))
    count = min(len(eligible), max(1, int(own_lines * REISSUE_SHARE)))
    if count == 0:
        return None
    # Shipped lines mostly complete; a few completed lines come back as returns.
    weights = np.where(statuses[eligible] == SHIPPED, 4.0, 1.0)
    chosen = np.sort(rng.choice(eligible, size=count, replace=False, p=weights / weights.sum()))
    old = statuses[chosen]
    new = np.where(old == SHIPPED, np.where(rng.random(count) < 0.9, COMPLETED, RETURNED), RETURNED)
    new = new.astype(np.int8)
    out = _gather_recent(state, chosen)
    _update_recent_status(state, chosen, new)
    out["status"] = new
    return out


def _gather_recent(state: MarketState, positions: np.ndarray) -> dict[str, np.ndarray]:
    """Rows at `positions` of the recent days taken as one sequence, without concatenating whole days."""
    pieces: list[dict[str, np.ndarray]] = []
    offset = 0
    for day_columns in state.recent:
        size = len(day_columns["status"])
        mask = (positions >= offset) & (positions < offset + size)
        if mask.any():
            local = positions[mask] - offset
            pieces.append({k: v[local] for k, v in day_columns.items()})
        offset += size
    return {k: np.concatenate([p[k] for p in pieces]) for k in pieces[0]}


def _update_recent_status(state: MarketState, positions: np.ndarray, statuses: np.ndarray) -> None:
    """Later re-issues start from the newest status, so a line only moves forward."""
    offset = 0
    for day_columns in state.recent:
        size = len(day_columns["status"])
        mask = (positions >= offset) & (positions < offset + size)
        day_columns["status"][positions[mask] - offset] = statuses[mask]
        offset += size


def orders_table(columns: dict[str, np.ndarray], catalog: Catalog, currency: str) -> pa.Table:
    count = len(columns["order_line_id"])
    return pa.Table.from_arrays(
        [
            pa.array(columns["order_id"]),
            pa.array(columns["order_line_id"]),
            pa.array(columns["order_date"], pa.int32()).cast(pa.date32()),
            pa.array(columns["order_ts"], pa.int64()).cast(pa.timestamp("s")),
            pa.array(columns["customer_id"]),
            pa.array(catalog.sku).take(pa.array(columns["sku"])),
            pa.array(CHANNELS).take(pa.array(columns["channel"])),
            pa.array(columns["quantity"]),
            pa.array(columns["unit_price"]).cast(pa.decimal128(14, 2)),
            pa.array(np.full(count, currency)),
            pa.array(STATUSES).take(pa.array(columns["status"])),
        ],
        schema=ORDERS_SCHEMA,
    )


# --- file writing ------------------------------------------------------------------------------


def daily_blob_path(market: str, dataset: str, day: dt.date) -> str:
    return f"{market}/{ORACLE_ROOT}/{dataset}/{day:%Y}/{dataset}_{day:%Y%m%d}.csv"


def reference_blob_path(market: str, dataset: str) -> str:
    return f"{market}/{ORACLE_ROOT}/{dataset}/{dataset}.csv"


def _write_bytes(path: Path, payload: bytes) -> None:
    with atomic_write(path, fsync=False) as temp:  # patient with a sample file open in Excel
        temp.write_bytes(payload)


def write_csv(out: Path, blob_path: str, table: pa.Table) -> Path:
    target = out / blob_path
    with atomic_write(target, fsync=False) as temp:
        pacsv.write_csv(table, str(temp), pacsv.WriteOptions(quoting_style="needed"))
    return target


# --- orders, new names, products, SCV per market ------------------------------------------------


@dataclass
class Window:
    start: dt.date
    end: dt.date

    @property
    def days(self) -> list[dt.date]:
        return _days(self.start, self.end)

    @property
    def month_starts(self) -> list[dt.date]:
        """First day of every month the window touches (the monthly files' dates)."""
        return sorted({d.replace(day=1) for d in self.days})

    @property
    def years(self) -> list[int]:
        return sorted({d.year for d in self.days})


def generate_orders(
    out: Path, window: Window, state: MarketState, catalog: Catalog, rows_per_day: int, seed: int, dataset: str
) -> list[Path]:
    prices = catalog.local_prices(state.currency)
    written = []
    for day in window.days:
        own = new_order_lines(seed, state, catalog, prices, day, rows_per_day)
        again = reissued_lines(seed, state, day, len(own["order_line_id"]))
        state.recent = (state.recent + [own])[-REISSUE_MAX_AGE_DAYS:]
        frame = own if again is None else {k: np.concatenate([own[k], again[k]]) for k in own}
        table = orders_table(frame, catalog, state.currency)
        written.append(write_csv(out, daily_blob_path(state.market, dataset, day), table))
        state.rows_written += table.num_rows
    return written


def _new_customers(state: MarketState) -> tuple[np.ndarray, np.ndarray]:
    """Every new customer so far and the epoch day of their first order."""
    ids = np.concatenate(state.new_customer_ids) if state.new_customer_ids else np.empty(0, np.int64)
    first = (
        np.concatenate(state.new_customer_first_day) if state.new_customer_first_day else np.empty(0, np.int32)
    )
    return ids, first


def new_names_table(state: MarketState) -> pa.Table:
    ids, first = _new_customers(state)
    return pa.table({"customer_id": pa.array(ids), "first_order_date": pa.array(first).cast(pa.date32())})


def products_table(catalog: Catalog) -> pa.Table:
    return pa.table(
        {
            "product_sku": pa.array(catalog.sku),
            "product_name": pa.array(catalog.name),
            "category": pa.array(catalog.category),
            "brand": pa.array(catalog.brand),
        }
    )


def scv_table(seed: int, state: MarketState, catalog: Catalog, file_date: dt.date) -> pa.Table:
    """Every customer known on `file_date` with a segment and lifetime figures."""
    rng = _rng(seed, state.market, "scv", file_date.isoformat())
    existing = np.arange(100_001, 100_001 + state.existing_customers, dtype=np.int64)
    new_ids, first = _new_customers(state)
    ids = np.concatenate([existing, new_ids[first < _epoch_days(file_date)]])
    orders = np.where(ids < 9_000_001, rng.geometric(0.18, len(ids)), rng.integers(1, 3, len(ids)))
    per_order_gbp = catalog.expected_line_value_gbp() * float(np.dot(np.arange(1, 5), LINES_PER_ORDER_SHARE))
    value = np.round(orders * per_order_gbp * rng.lognormal(0.0, 0.35, len(ids)), 2)
    segment = SEGMENTS[np.digitize(orders, [2, 4, 8, 15])]
    return pa.table(
        {
            "customer_id": pa.array(ids),
            "segment": pa.array(segment),
            "lifetime_orders": pa.array(orders.astype(np.int64)),
            "lifetime_value_gbp": pa.array(value).cast(pa.decimal128(14, 2)),
        }
    )


def generic_table(seed: int, kind: DatasetType, key: str, rows: int, file_date: dt.date, currency: str) -> pa.Table:
    """A dataset the generator has no model for: values from its declared schema (pipeline.yaml):
    grain columns unique, numbers within their bounds, strings from `allowed` where declared."""
    rng = _rng(seed, "generic", key)
    arrays = {}
    for name, column in kind.columns.items():
        low, high = column.bounds
        if column.type == "integer":
            low, high = max(int(low), 1), min(int(high), 1_000_000)
            if name in kind.grain:
                arrays[name] = pa.array(np.arange(low, low + rows, dtype=np.int64))
            else:
                arrays[name] = pa.array(rng.integers(low, max(low, high) + 1, rows))
        elif column.type == "decimal":
            low, high = max(float(low), 0.0), min(float(high), 1000.0)
            arrays[name] = pa.array(np.round(rng.uniform(low, max(low, high), rows), 2)).cast(pa.decimal128(14, 2))
        elif column.type == "date":
            arrays[name] = pa.array(np.full(rows, _epoch_days(file_date), np.int32)).cast(pa.date32())
        elif column.type == "timestamp":
            ts = _epoch_days(file_date) * 86_400 + rng.integers(0, 86_400, rows)
            arrays[name] = pa.array(ts).cast(pa.timestamp("s"))
        elif column.market_currency:
            arrays[name] = pa.array([currency] * rows)
        elif column.allowed:
            arrays[name] = pa.array(np.array(column.allowed)[rng.integers(0, len(column.allowed), rows)])
        else:
            arrays[name] = pa.array(np.char.add(f"{name}_", np.arange(1, rows + 1).astype(str)))
    return pa.table(arrays)


# --- budget workbook -----------------------------------------------------------------------------


def gbp_per_unit(seed: int, currency: str, month: dt.date) -> float:
    """A monthly rate near the currency's price level, drifting a little month to month."""
    if currency == "GBP":
        return 1.0
    base = 1.0 / PRICE_LEVEL.get(currency, 1.0)
    drift = 0.02 * np.sin(month.month / 12.0 * 2 * np.pi + zlib.crc32(currency.encode()) % 7)
    noise = _rng(seed, "fx", currency, month.isoformat()).normal(0.0, 0.006)
    rate = base * (1.0 + drift + noise)
    return float(f"{rate:.6g}")


def budget_values(
    seed: int, year: int, markets: Sequence[str], catalog: Catalog, rows_per_day: int
) -> dict[tuple[str, str], list[float | None]]:
    """Budget GBP per (market, channel) per day: expected sales +-15%, a few days without budget."""
    days = _days(dt.date(year, 1, 1), dt.date(year, 12, 31))
    weekday = np.array([WEEKDAY_FACTOR[d.weekday()] for d in days])
    # Reissued lines mostly re-state sales already counted, so the day's own lines drive the budget.
    expected_lines = rows_per_day * weekday
    line_value = catalog.expected_line_value_gbp() * SALES_STATUS_SHARE
    values: dict[tuple[str, str], list[float | None]] = {}
    for market in markets:
        for share, channel in zip(CHANNEL_SHARE, CHANNELS, strict=True):
            rng = _rng(seed, "budget", year, market, channel)
            budget = np.round(expected_lines * share * line_value * rng.uniform(0.85, 1.15, len(days)), 2)
            blank = rng.random(len(days)) < 0.03
            values[(market, str(channel))] = [None if b else float(v) for v, b in zip(budget, blank, strict=True)]
    return values


def budget_workbook_bytes(
    seed: int, year: int, markets: Sequence[str], currencies: Sequence[str], catalog: Catalog, rows_per_day: int
) -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Font

    days = _days(dt.date(year, 1, 1), dt.date(year, 12, 31))
    wb = Workbook()
    ws = wb.active
    ws.title = "Budget"
    ws.append([f"Daily Sales Budget {year}"])
    ws["A1"].font = Font(bold=True, size=14)
    ws.append(["Net sales budget in GBP by market and channel; blank = no budget"])
    ws.append([])
    ws.append(["Market", "Channel", *[dt.datetime(d.year, d.month, d.day) for d in days]])
    header_row = ws.max_row
    for cell in ws[header_row][2:]:
        cell.number_format = "yyyy-mm-dd"
    values = budget_values(seed, year, markets, catalog, rows_per_day)
    for market in markets:
        channel_rows = [values[(market, str(c))] for c in CHANNELS]
        for channel, row in zip(CHANNELS, channel_rows, strict=True):
            ws.append([market, str(channel), *row])
        totals = [round(sum(v or 0.0 for v in col), 2) for col in zip(*channel_rows, strict=True)]
        ws.append([market, "Total", *totals])
        for cell in ws[ws.max_row]:
            cell.font = Font(bold=True)

    fx = wb.create_sheet("Exchange")
    fx.append(["Exchange rates: GBP per 1 unit of currency"])
    months = [dt.datetime(year, m, 1) for m in range(1, 13)]
    fx.append(["Currency", *months])
    for cell in fx[fx.max_row][1:]:
        cell.number_format = "yyyy-mm"
    for currency in ["GBP", *[c for c in currencies if c != "GBP"]]:
        fx.append([currency, *[gbp_per_unit(seed, currency, m.date()) for m in months]])

    wb.properties.creator = "generate_sample_data.py"
    sink = io.BytesIO()
    wb.save(sink)
    return _deterministic_xlsx(sink.getvalue(), dt.datetime(year, 1, 1))


_CORE_TIMES = re.compile(rb"(<dcterms:(created|modified)[^>]*>)[^<]*(</dcterms:\2>)")


def _deterministic_xlsx(payload: bytes, stamp: dt.datetime) -> bytes:
    """Same input -> same bytes: fixed zip entry times and fixed document properties."""
    fixed = stamp.strftime("%Y-%m-%dT%H:%M:%SZ").encode()
    source = zipfile.ZipFile(io.BytesIO(payload))
    sink = io.BytesIO()
    with zipfile.ZipFile(sink, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            data = source.read(info.filename)
            if info.filename == "docProps/core.xml":
                data = _CORE_TIMES.sub(lambda m: m.group(1) + fixed + m.group(3), data)
            entry = zipfile.ZipInfo(info.filename, date_time=(1980, 1, 1, 0, 0, 0))
            entry.compress_type = zipfile.ZIP_DEFLATED
            target.writestr(entry, data)
    return sink.getvalue()


# --- the whole tree ------------------------------------------------------------------------------


def _market_datasets(config: PipelineConfig, markets: Iterable[str]) -> dict[str, list[str]]:
    wanted = set(markets)
    plan: dict[str, list[str]] = {m: [] for m in config.markets if m in wanted}
    for entry in config.datasets:
        if entry.market in plan:
            plan[entry.market].append(entry.dataset)
    return plan


def _market_files(
    out: Path, config: PipelineConfig, window: Window, state: MarketState, datasets: list[str],
    catalog: Catalog, rows_per_day: int, seed: int,
) -> list[Path]:
    # Orders first: new names and the SCV describe the customers the orders created.
    ordered = sorted(datasets, key=lambda d: d != "ingest_orders")
    written: list[Path] = []
    writers: dict[str, Callable[[str], list[Path]]] = {
        "ingest_orders": lambda d: generate_orders(out, window, state, catalog, rows_per_day, seed, d),
        "ingest_products_sku": lambda d: [write_csv(out, reference_blob_path(state.market, d), products_table(catalog))],
        "ingest_new_names": lambda d: [write_csv(out, reference_blob_path(state.market, d), new_names_table(state))],
        "ingest_scv": lambda d: [
            write_csv(out, daily_blob_path(state.market, d, m), scv_table(seed, state, catalog, m))
            for m in window.month_starts
        ],
    }
    for dataset in ordered:
        if dataset in writers:
            written += writers[dataset](dataset)
        else:
            written += _generic_files(out, config, window, state.market, dataset, rows_per_day, seed)
    return written


def _generic_files(
    out: Path, config: PipelineConfig, window: Window, market: str, dataset: str, rows_per_day: int, seed: int
) -> list[Path]:
    kind = config.dataset_type(dataset)
    currency = config.markets[market].currency
    rows = max(10, rows_per_day // 10)
    if kind.cadence == "reference":
        table = generic_table(seed, kind, f"{market}/{dataset}", rows, window.end, currency)
        return [write_csv(out, reference_blob_path(market, dataset), table)]
    dates = window.days if kind.cadence == "daily" else window.month_starts
    return [
        write_csv(out, daily_blob_path(market, dataset, d), generic_table(seed, kind, f"{market}/{dataset}/{d}", rows, d, currency))
        for d in dates
    ]


def generate(
    out: Path, as_of: dt.date, days: int, rows_per_day: int, seed: int, markets: Sequence[str] | None = None
) -> dict:
    """Write the landing tree under `out`; return a summary (files written, rows per market)."""
    if days < 1 or rows_per_day < 1:
        raise ValueError("days and rows_per_day must be at least 1")
    config = load_pipeline_config()
    chosen = list(markets) if markets else list(config.markets)
    unknown = sorted(set(chosen) - set(config.markets))
    if unknown:
        raise ValueError(f"unknown market(s) {unknown}; configured: {sorted(config.markets)}")
    out = Path(out)
    window = Window(as_of - dt.timedelta(days=days - 1), as_of)
    catalog = build_catalog(seed)
    files: list[Path] = []
    rows: dict[str, int] = {}
    for market, datasets in _market_datasets(config, chosen).items():
        state = MarketState(market, config.markets[market].currency, existing_customers=max(1000, rows_per_day * 5))
        files += _market_files(out, config, window, state, datasets, catalog, rows_per_day, seed)
        rows[market] = state.rows_written
    currencies = sorted({config.markets[m].currency for m in config.markets})
    for year in window.years:
        payload = budget_workbook_bytes(seed, year, list(config.markets), currencies, catalog, rows_per_day)
        target = out / SHAREPOINT_FOLDER / BUDGET_WORKBOOK.format(year=year)
        _write_bytes(target, payload)
        files.append(target)
    return {
        "out": str(out),
        "as_of": as_of.isoformat(),
        "days": days,
        "files": len(files),
        "order_rows": rows,
        "budget_years": window.years,
        "paths": [p.relative_to(out).as_posix() for p in files],
    }


# --- upload ------------------------------------------------------------------------------------


def upload_tree(out: Path, paths: Sequence[str], connection_string: str, container: str) -> int:
    """Upload the generated files to the container under the same relative paths (overwrite)."""
    from azure.core.exceptions import ResourceExistsError
    from azure.storage.blob import BlobServiceClient

    service = BlobServiceClient.from_connection_string(connection_string)
    client = service.get_container_client(container)
    try:
        client.create_container()
    except ResourceExistsError:
        pass
    for relative in paths:
        with (out / relative).open("rb") as handle:
            client.upload_blob(relative, handle, overwrite=True)
    return len(paths)


# --- CLI ---------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = ArgumentParser(description=__doc__)
    parser.add_argument("--days", type=int, default=30, help="days of orders ending at --as-of (default 30)")
    parser.add_argument("--rows-per-day", type=int, default=2000, help="weekday order lines per market (default 2000)")
    parser.add_argument("--as-of", type=dt.date.fromisoformat, default=None, help="last day, YYYY-MM-DD (default today in pipeline.yaml's timezone)")
    parser.add_argument("--seed", type=int, default=42, help="random seed (default 42); same args give identical files")
    parser.add_argument("--out", type=Path, default=None, help="landing folder (default LANDING_DIR)")
    parser.add_argument("--markets", nargs="+", default=None, help="only these markets (default: all configured)")
    parser.add_argument("--upload", action="store_true", help="also upload the tree to the Azure container")
    parser.add_argument("--connection-string", default=None, help="default AZURE_STORAGE_CONNECTION_STRING")
    parser.add_argument("--container", default=None, help="default AZURE_CONTAINER (or 'raw')")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    config = load_pipeline_config()
    as_of = args.as_of or today_in(config.timezone)
    out = args.out or landing_dir()
    summary = generate(out, as_of, args.days, args.rows_per_day, args.seed, args.markets)
    paths = summary.pop("paths")
    if args.upload:
        connection = args.connection_string or azure_connection_string()
        if not connection:
            print("--upload needs AZURE_STORAGE_CONNECTION_STRING or --connection-string", file=sys.stderr)
            return 78
        container = args.container or azure_container()
        summary["uploaded"] = upload_tree(Path(out), paths, connection, container)
        summary["container"] = container
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    from pipeline_common.script_support import run_main  # foreseeable failures end in the contract's codes

    raise SystemExit(run_main(main))
