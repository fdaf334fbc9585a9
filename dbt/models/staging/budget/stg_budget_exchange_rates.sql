-- GBP per unit of currency for a month; decimal keeps FX conversion exact before rounding.
select
    upper(trim(currency)) as currency,
    cast(date_trunc('month', cast(month as date)) as date) as month,
    cast(gbp_per_unit as decimal(18, 10)) as gbp_per_unit
from {{ source('budget', 'exchange_rates') }}
