{#- Shared by the generated per-market staging models: type, label and deduplicate one dataset. -#}

{#- The key that identifies one row of a dataset; the latest file wins per key. -#}
{% macro dataset_grain(dataset) -%}
  {#- The grains are generated from scripts/dev/generate_dbt_staging.py's GRAINS. -#}
  {%- set grains = pipeline_dataset_grains() -%}
  {%- if dataset not in grains -%}
    {{ exceptions.raise_compiler_error("dataset_grain: no grain known for dataset '" ~ dataset ~ "'; add it to GRAINS in scripts/dev/generate_dbt_staging.py") }}
  {%- endif -%}
  {{ return(grains[dataset]) }}
{%- endmacro %}

{#- pipeline.yaml column type -> DuckDB type. -#}
{% macro sql_type(column_type) -%}
  {%- set types = {
      'integer': 'bigint',
      'string': 'varchar',
      'date': 'date',
      'timestamp': 'timestamp',
      'decimal': 'decimal(18, 2)',
  } -%}
  {{ return(types[column_type]) }}
{%- endmacro %}

{#- The column whose days an incremental staging model reports as changed (incremental.sql);
    daily datasets with one are staged incrementally, the others (small) as tables. -#}
{% macro dataset_change_date(dataset) -%}
  {{ return({'ingest_orders': 'order_date'}.get(dataset)) }}
{%- endmacro %}

{#- One market's dataset: contract columns typed, `market` added, one row per grain key
    where the latest _file_date wins (ties: the later blob name, then the later row in the
    file, so reruns pick the same row; an integer tie-break keeps the sort cheap).
    Daily datasets are built by the latest_file_wins materialization (macros/incremental.sql),
    which applies that rule itself, file by file; the others are deduplicated here. -#}
{% macro stage_dataset(market, dataset) -%}
{%- set dataset_type = pipeline_dataset_types()[dataset] -%}
{%- set columns = dataset_type['columns'] -%}
{%- set grain = dataset_grain(dataset) -%}
{%- set change_date = dataset_change_date(dataset) -%}
{%- set incremental = dataset_type['cadence'] == 'daily' and change_date -%}
{%- if incremental -%}
{{ config(materialized='latest_file_wins', grain=grain, change_date=change_date) }}
{%- endif %}
with typed as (
    select
    {%- for column, column_type in columns.items() %}
        cast({{ column }} as {{ sql_type(column_type) }}) as {{ column }},
    {%- endfor %}
        '{{ market }}' as market,
        cast(_file_date as date) as _file_date,
        cast(_source_blob as varchar) as _source_blob,
        filename as _source_file,
        file_row_number as _file_row
    from {{ source(market, dataset) }}
)
{% if incremental %}
select * from typed
{%- else %}
select * exclude (_file_row, _source_file)
from typed
qualify row_number() over (
    partition by {{ grain | join(', ') }}
    order by _file_date desc, _source_blob desc, _file_row desc
) = 1
{%- endif %}
{%- endmacro %}

{#- Order line statuses that count as sales (contract section 5). -#}
{% macro net_sale_statuses() -%}
  {{ return(['COMPLETED', 'SHIPPED']) }}
{%- endmacro %}

{% macro is_net_sale(status_column) -%}
  {{ status_column }} in ({{ sql_string_list(net_sale_statuses()) }})
{%- endmacro %}

{#- Values as a SQL list body for `in (...)`: 'A', 'B'; `null` when empty (matches nothing). -#}
{% macro sql_string_list(values) -%}
  {%- if values -%}'{{ values | join("', '") }}'{%- else -%}null{%- endif -%}
{%- endmacro %}

{#- Markets whose orders are staged, from the generated config. -#}
{% macro markets_with_dataset(dataset) -%}
  {%- set found = [] -%}
  {%- for entry in pipeline_datasets() if entry['dataset'] == dataset -%}
    {%- do found.append(entry['market']) -%}
  {%- endfor -%}
  {{ return(found) }}
{%- endmacro %}

{#- The staging model of one market's dataset (scripts/dev/generate_dbt_staging.py names them alike). -#}
{% macro model_name_for(market, dataset) -%}
  {{ return('stg_' ~ market | lower ~ '_' ~ dataset | replace('ingest_', '', 1)) }}
{%- endmacro %}
