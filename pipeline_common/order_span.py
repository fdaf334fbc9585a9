"""How far back the synced orders reach: which budget years (exchange rates) the warehouse needs.

`net_sales_gbp` converts every order line at the rate of its currency and the month of its
`order_date` (contract section 5), and the rates of year Y come only from `Daily Sales Budget
{Y}.xlsx` (section 4). So every year from the earliest `order_date` in the synced orders Parquet
(`$DATA_DIR/raw/{MARKET}/ingest_orders/{YYYY}/ingest_orders_{YYYYMMDD}.parquet`, section 3) to
today needs its budget ingested. A file's earliest date is read from the Parquet footer's column
statistics (no data read; the whole column only when a writer left no statistics), so a year of
history (1,464 files) costs well under a second.

A line's `order_date` may lie before its file's date (a status change re-sends an earlier line),
so the file names alone are not enough: a January file can carry December's lines.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

ORDERS_DATASET = "ingest_orders"  # contract section 2: the dataset whose lines are converted to GBP
ORDER_DATE = "order_date"
_ORDERS_FILE = re.compile(rf"^{ORDERS_DATASET}_\d{{8}}\.parquet$")


@dataclass(frozen=True)
class OrdersStart:
    """The earliest order date found, and the file that holds it (named in messages)."""

    first_date: dt.date
    path: Path


def earliest_order_date(raw: Path, markets: Iterable[str]) -> OrdersStart | None:
    """The earliest `order_date` over every market's synced orders files; None when there are none.

    A file that cannot be read (being replaced right now, or damaged) is passed over: the sync
    reports it, and dbt fails on it by name.
    """
    best: OrdersStart | None = None
    for market in markets:
        for path in sorted((raw / market / ORDERS_DATASET).glob("*/*.parquet")):
            if not _ORDERS_FILE.match(path.name):
                continue  # temporary names of a sync in progress and anything else
            first = _first_date(path)
            if first is not None and (best is None or first < best.first_date):
                best = OrdersStart(first, path)
    return best


def _first_date(path: Path) -> dt.date | None:
    import pyarrow.parquet as pq

    try:
        metadata = pq.read_metadata(path)
    except (OSError, ValueError):
        return None
    names = [metadata.schema.column(i).name for i in range(metadata.num_columns)]
    if ORDER_DATE not in names:
        return None
    column = names.index(ORDER_DATE)
    found: list[dt.date] = []
    for group in range(metadata.num_row_groups):
        chunk = metadata.row_group(group).column(column)
        if chunk.num_values == 0:
            continue
        stats = chunk.statistics
        if stats is None or not stats.has_min_max or not isinstance(stats.min, dt.date):
            return _first_date_read(path)
        found.append(stats.min)
    return min(found) if found else None


def _first_date_read(path: Path) -> dt.date | None:
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    try:
        values = pq.read_table(path, columns=[ORDER_DATE]).column(ORDER_DATE)
    except (OSError, ValueError):
        return None
    value = pc.min(values).as_py()
    if isinstance(value, dt.datetime):
        return value.date()
    return value if isinstance(value, dt.date) else None
