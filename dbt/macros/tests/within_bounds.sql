{#- One query for every bounded column of a model (cheaper than one test node per column): the
    rows with a value outside its declared [min, max] (pipeline.yaml; either end may be null), and
    the first such column in `out_of_bounds_column`. Generated into the staging tests by
    scripts/generate_dbt_staging.py, from the same declaration the sync enforces. -#}
{% test within_bounds(model, bounds) %}
{%- set conditions = [] -%}
{%- for column, limits in bounds.items() -%}
  {%- set parts = [] -%}
  {%- if limits[0] is not none -%}{%- do parts.append(column ~ ' < ' ~ limits[0]) -%}{%- endif -%}
  {%- if limits[1] is not none -%}{%- do parts.append(column ~ ' > ' ~ limits[1]) -%}{%- endif -%}
  {%- do conditions.append((column, parts | join(' or '))) -%}
{%- endfor %}
select
    case
    {%- for column, condition in conditions %}
        when {{ condition }} then '{{ column }}'
    {%- endfor %}
    end as out_of_bounds_column,
    *
from {{ model }}
where {% for column, condition in conditions %}({{ condition }}){% if not loop.last %} or {% endif %}{% endfor %}
{% endtest %}
