{#- Shared by the generated per-market staging models: type, label and deduplicate one dataset. -#}

{#- The key that identifies one row of a dataset (pipeline.yaml dataset_types.<name>.grain, through
    the generated pipeline_dataset_types()); the latest file wins per key. -#}
{% macro dataset_grain(dataset) -%}
  {%- set types = pipeline_dataset_types() -%}
  {%- if dataset not in types -%}
    {{ exceptions.raise_compiler_error("dataset_grain: dataset '" ~ dataset ~ "' is not in pipeline.yaml dataset_types; run python scripts/dev/generate_dbt_staging.py") }}
  {%- endif -%}
  {{ return(types[dataset]['grain']) }}
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

{#- The column whose days an incremental staging model reports as changed (incremental.sql), from
    pipeline.yaml dataset_types.<name>.change_date; daily datasets with one are staged
    incrementally, the others (small) as tables. -#}
{% macro dataset_change_date(dataset) -%}
  {{ return(pipeline_dataset_types()[dataset].get('change_date')) }}
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

{#- The gate of a market's staging model (docs/warehouse.md, "A market that fails a test holds back
    only itself"): what everything downstream reads instead of the staging model. It depends on every
    staging model of its market, so when any test of that market fails, dbt skips the market's gates
    and they keep the rows of the last build in which the whole market passed. dbt also skips every
    model downstream of them; the Dagster asset builds those again from the held gates
    (orchestration/warehouse/gates.py), so the other markets are current. -#}
{% macro gate_name_for(market, dataset) -%}
  {{ return('good_' ~ market | lower ~ '_' ~ dataset | replace('ingest_', '', 1)) }}
{%- endmacro %}

{% macro market_gate(market, dataset) -%}
{%- set dataset_type = pipeline_dataset_types()[dataset] -%}
{%- set day_column = dataset_type.get('change_date') if dataset_type['cadence'] == 'daily' else none -%}
{{ config(materialized='market_gate', gate_of=model_name_for(market, dataset), day_column=day_column, tags=['market_gate']) }}
{%- for entry in pipeline_datasets() if entry['market'] == market and entry['dataset'] != dataset %}
-- depends_on: {{ ref(model_name_for(market, entry['dataset'])) }}
{%- endfor %}
select * from {{ ref(model_name_for(market, dataset)) }}
{%- endmacro %}
