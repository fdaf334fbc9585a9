-- Budget rows for a market pipeline.yaml does not know would be silently ignored by the marts.
select distinct market
from {{ ref('stg_budget_daily_sales') }}
where market not in ({{ sql_string_list(pipeline_markets() | list) }})
