{#- dbt's accepted_values, returning the offending rows themselves (dbt's own groups them by value):
    on a staging model each row keeps `_source_blob` (and `_file_row` where kept), so a failure can be
    traced to the file and line (orchestration/warehouse/gates.py). Same name, arguments and verdict
    as dbt's; a project macro of this name takes precedence over dbt's default. -#}
{% macro default__test_accepted_values(model, column_name, values, quote=True) %}
select {{ column_name }} as value_field, *
from {{ model }}
where {{ column_name }} not in (
    {%- for value in values -%}
        {%- if quote %}'{{ value }}'{% else %}{{ value }}{% endif %}{% if not loop.last %}, {% endif %}
    {%- endfor -%}
)
{% endmacro %}
