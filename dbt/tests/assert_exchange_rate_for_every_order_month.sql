-- Every currency and month in orders needs an exchange rate, else net_sales_gbp would be null.
-- One row per missing (currency, month). Shown in Dagster as a check on int_orders_summary_daily.
{{ config(meta={'dagster': {'ref': {'name': 'int_orders_summary_daily'}}}) }}

select distinct
    orders.currency,
    cast(date_trunc('month', orders.order_date) as date) as month
from {{ ref('int_orders_summary_daily') }} as orders
left join {{ ref('stg_budget_exchange_rates') }} as fx
    on fx.currency = orders.currency
    and fx.month = cast(date_trunc('month', orders.order_date) as date)
where fx.gbp_per_unit is null
