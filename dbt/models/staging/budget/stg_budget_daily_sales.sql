-- Budget rows typed by name (the CSV is read as text so a bad cell fails here, named by DuckDB).
-- Blank cells were dropped by the ingest: no row means no budget.
select
    cast(budget_date as date) as budget_date,
    upper(trim(market)) as market,
    upper(trim(channel)) as channel,
    cast(budget_gbp as decimal(18, 2)) as budget_gbp
from {{ source('budget', 'daily_sales_budget') }}
where nullif(trim(budget_gbp), '') is not null
