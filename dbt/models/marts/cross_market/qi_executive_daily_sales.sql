-- Contract section 5: one row per (order_date, market) present in orders. GBP is converted
-- per currency and month and rounded once, after summing; budget is all channels (0 when none).
-- Rebuilt per day: only the order dates that changed since the last build (macros/incremental.sql).
{{ config(materialized='incremental_by_day', day_column='order_date') }}

-- Orders are counted from one row per order (per_order), not with count(distinct): a grouped
-- count(distinct) over a year of lines ran out of dbt's memory_limit instead of spilling
-- (docs/performance.md, "A year on the desktop"); a plain grouping spills.
with per_order as (
    select
        order_date,
        market,
        currency,
        order_id,
        bool_or(is_net_sale) as has_net_sale,
        sum(quantity) filter (where is_net_sale) as units,
        sum(quantity * unit_price) filter (where is_net_sale) as net_sales_local
    from {{ ref('int_orders') }}
    group by order_date, market, currency, order_id
),

sales as (
    select
        order_date,
        market,
        currency,
        count(*) filter (where has_net_sale) as orders,
        coalesce(sum(units), 0) as units,
        coalesce(sum(net_sales_local), 0) as net_sales_local
    from per_order
    group by order_date, market, currency
),

sales_gbp as (
    select
        sales.order_date,
        sales.market,
        sum(sales.net_sales_local * fx.gbp_per_unit) as net_sales_gbp,
        sum(sales.orders) as orders,
        sum(sales.units) as units
    from sales
    left join {{ ref('stg_budget_exchange_rates') }} as fx
        on fx.currency = sales.currency
        and fx.month = cast(date_trunc('month', sales.order_date) as date)
    group by sales.order_date, sales.market
),

budget as (
    select budget_date, market, sum(budget_gbp) as budget_gbp
    from {{ ref('stg_budget_daily_sales') }}
    group by budget_date, market
),

new_customers as (
    {%- set new_name_markets = markets_with_dataset('ingest_new_names') %}
    {%- for market in new_name_markets %}
    select '{{ market }}' as market, first_order_date, count(*) as new_customers
    from {{ ref(gate_name_for(market, 'ingest_new_names')) }}
    group by first_order_date
    {% if not loop.last %}union all{% endif %}
    {%- else %}
    select cast(null as varchar) as market, cast(null as date) as first_order_date, 0 as new_customers
    where false
    {%- endfor %}
),

rounded as (
    select
        sales_gbp.order_date,
        sales_gbp.market,
        cast(round(sales_gbp.net_sales_gbp, 2) as decimal(18, 2)) as net_sales_gbp,
        cast(round(coalesce(budget.budget_gbp, 0), 2) as decimal(18, 2)) as budget_gbp,
        sales_gbp.orders,
        sales_gbp.units,
        -- Markets without a new-names feed have no answer (null), not zero new customers.
        case
            when sales_gbp.market in ({{ sql_string_list(new_name_markets) }})
                then coalesce(new_customers.new_customers, 0)
        end as new_customers
    from sales_gbp
    left join budget
        on budget.budget_date = sales_gbp.order_date
        and budget.market = sales_gbp.market
    left join new_customers
        on new_customers.first_order_date = sales_gbp.order_date
        and new_customers.market = sales_gbp.market
)

select
    order_date,
    market,
    net_sales_gbp,
    budget_gbp,
    cast(net_sales_gbp - budget_gbp as decimal(18, 2)) as variance_gbp,
    case when budget_gbp <> 0 then round(cast(net_sales_gbp - budget_gbp as double) / cast(budget_gbp as double), 4) end
        as variance_pct,
    cast(orders as bigint) as orders,
    cast(units as bigint) as units,
    cast(new_customers as bigint) as new_customers
from rounded
