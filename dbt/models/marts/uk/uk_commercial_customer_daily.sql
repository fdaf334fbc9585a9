-- UK commercial view per day and SCV segment: customers buying, new names among them, sales.
-- new_customers_buying is not qi_executive_daily_sales.new_customers: it counts only the new names
-- (first_order_date = that day) who also have a completed or shipped line that day, so a new
-- customer whose first order was cancelled or returned counts there but not here.
-- Segment is the customer's latest SCV snapshot; customers not (yet) in the SCV are 'Unassigned'.
-- Rebuilt per day: only the order dates that changed since the last build (macros/incremental.sql).
{{ config(materialized='incremental_by_day', day_column='order_date') }}

with lines as (
    select order_date, order_id, customer_id, quantity, unit_price
    from {{ ref('good_uk_orders') }}
    where {{ is_net_sale('status') }}
)

select
    lines.order_date,
    coalesce(scv.segment, 'Unassigned') as segment,
    count(distinct lines.customer_id) as customers,
    count(distinct lines.customer_id) filter (where new_names.first_order_date = lines.order_date)
        as new_customers_buying,
    count(distinct lines.order_id) as orders,
    cast(sum(lines.quantity) as bigint) as units,
    -- UK orders are GBP (the staging currency test pins it), so no FX here.
    cast(round(sum(lines.quantity * lines.unit_price), 2) as decimal(18, 2)) as net_sales_gbp
from lines
left join {{ ref('good_uk_scv') }} as scv on scv.customer_id = lines.customer_id
left join {{ ref('good_uk_new_names') }} as new_names on new_names.customer_id = lines.customer_id
group by lines.order_date, coalesce(scv.segment, 'Unassigned')
