"""Where a source file lives in the Azure container (contract section 2), for the sync, the
arrival sensor and the currency report alike.

    {MARKET}/raw_data/DWH/Oracle/{dataset}/{dataset}.csv                      reference data
    {MARKET}/raw_data/DWH/Oracle/{dataset}/{YYYY}/{dataset}_{YYYYMMDD}.csv    one file a day
"""

from __future__ import annotations

import datetime as dt
import re

DATASET_PREFIX = "{market}/raw_data/DWH/Oracle/{dataset}/"


def dataset_prefix(market: str, dataset: str) -> str:
    """The folder every file of one market's dataset lives under (ends with `/`)."""
    return DATASET_PREFIX.format(market=market, dataset=dataset)


def reference_blob_name(market: str, dataset: str) -> str:
    return f"{dataset_prefix(market, dataset)}{dataset}.csv"


def daily_blob_name(market: str, dataset: str, day: dt.date) -> str:
    return f"{dataset_prefix(market, dataset)}{day:%Y}/{dataset}_{day:%Y%m%d}.csv"


def dated_blob_pattern(market: str, dataset: str) -> re.Pattern[str]:
    """`{prefix}{YYYY}/{dataset}_{YYYYMMDD}.csv`, capturing the year folder and the file date."""
    return re.compile(
        re.escape(dataset_prefix(market, dataset)) + r"(?P<year>\d{4})/" + re.escape(dataset)
        + r"_(?P<date>\d{8})\.csv"
    )
