{#- One query for several columns (cheaper than one test node per column); each failing row
    names the first null column in `null_column`. -#}
{% test not_null_columns(model, columns) %}
select
    case
    {%- for column in columns %}
        when {{ column }} is null then '{{ column }}'
    {%- endfor %}
    end as null_column,
    *
from {{ model }}
where {% for column in columns %}{{ column }} is null{% if not loop.last %} or {% endif %}{% endfor %}
{% endtest %}
