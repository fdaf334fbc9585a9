-- Contract section 5: one row per (order_date, market, channel) present in orders; only
-- COMPLETED/SHIPPED lines count; GBP via the rate of the currency and the order month.
-- Rebuilt per day: only the order dates that changed since the last build (macros/incremental.sql).
{{ config(materialized='incremental_by_day', day_column='order_date') }}

-- One row per order first, then per day (no count(distinct): see qi_executive_daily_sales.sql).
with per_order as (
    select
        order_date,
        market,
        channel,
        currency,
        order_id,
        count(*) filter (where is_net_sale) as order_lines,
        sum(quantity) filter (where is_net_sale) as units,
        sum(quantity * unit_price) filter (where is_net_sale) as net_sales_local
    from {{ ref('int_orders') }}
    group by order_date, market, channel, currency, order_id
),

daily as (
    select
        order_date,
        market,
        channel,
        currency,
        count(*) filter (where order_lines > 0) as orders,
        cast(sum(order_lines) as bigint) as order_lines,
        cast(coalesce(sum(units), 0) as bigint) as units,
        coalesce(sum(net_sales_local), 0) as net_sales_local
    from per_order
    group by order_date, market, channel, currency
)

select
    daily.order_date,
    daily.market,
    daily.channel,
    daily.orders,
    daily.order_lines,
    daily.units,
    cast(round(daily.net_sales_local, 2) as decimal(18, 2)) as net_sales_local,
    daily.currency,
    cast(round(daily.net_sales_local * fx.gbp_per_unit, 2) as decimal(18, 2)) as net_sales_gbp
from daily
left join {{ ref('stg_budget_exchange_rates') }} as fx
    on fx.currency = daily.currency
    and fx.month = cast(date_trunc('month', daily.order_date) as date)
