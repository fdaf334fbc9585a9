-- Every currency and month in orders needs an exchange rate, else net_sales_gbp would be null.
-- One row per missing (currency, month). Shown in Dagster as a check on int_orders_summary_daily.
-- net_sales_local is never null, so a null net_sales_gbp means the model's rate join found no rate.
{{ config(meta={'dagster': {'ref': {'name': 'int_orders_summary_daily'}}}) }}

select distinct
    currency,
    cast(date_trunc('month', order_date) as date) as month
from {{ ref('int_orders_summary_daily') }}
where net_sales_gbp is null
