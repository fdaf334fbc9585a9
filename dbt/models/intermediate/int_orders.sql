-- Every configured market's order lines in one relation (markets from pipeline.yaml via the
-- generated pipeline_datasets()), read through each market's gate (good_<market>_orders: the last
-- rows that passed every test of that market); is_net_sale applies the contract's status rule once.
{{ config(materialized='view') }}

{% for market in markets_with_dataset('ingest_orders') %}
select
    market,
    order_id,
    order_line_id,
    order_date,
    customer_id,
    product_sku,
    channel,
    quantity,
    unit_price,
    currency,
    status,
    {{ is_net_sale('status') }} as is_net_sale
from {{ ref(gate_name_for(market, 'ingest_orders')) }}
{% if not loop.last %}union all{% endif %}
{% endfor %}
