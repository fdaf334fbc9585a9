{#-
  The incremental warehouse (docs/warehouse.md, "Incremental builds"). Two materializations:

  latest_file_wins  a staging model over a folder of Parquet files (one per file date). It keeps, per
                    grain key, the row of the latest file (`_file_date`, then `_source_blob`, then
                    `_file_row`, descending), like a full rebuild would. Each build compares the files
                    now present (path, size, modification time, the sync's write id) with those it
                    absorbed last time and touches only the keys of new, changed and removed files:
                    a new file's rows compete with the current winners; keys whose winner came from a
                    changed or removed file are recomputed from every file present. The days
                    (`change_date` values) of every row deleted or inserted go to _warehouse_changes.

  incremental_by_day  a model with one or more rows per day (`day_column`). Each build recomputes only
                    the days its latest_file_wins ancestors reported since its last build: it deletes
                    those days and inserts the model's own SQL filtered to them.

  Both rebuild in full when asked (`dbt build --full-refresh`), when the table is missing, and when
  what they compute could differ from last time: their compiled SQL or configuration changed (this
  covers model and macro edits and pipeline.yaml, which is generated into the SQL), a view between
  them and their inputs changed, the set of their incremental inputs changed, or (incremental_by_day)
  the content of any other input table changed (budget, exchange rates, new names, SCV: they are
  small, so their content hash is cheap). Everything a build writes, bookkeeping included, commits
  in one transaction.
-#}

{% macro warehouse_bookkeeping(name) -%}
  {{ return(api.Relation.create(database=target.database, schema=target.schema, identifier=name)) }}
{%- endmacro %}

{#- Run once per invocation (on-run-start in dbt_project.yml): two model threads creating them would conflict. -#}
{% macro warehouse_create_bookkeeping() -%}
  {%- set files = warehouse_bookkeeping('_warehouse_files') -%}
  {%- set changes = warehouse_bookkeeping('_warehouse_changes') -%}
  {%- set state = warehouse_bookkeeping('_warehouse_state') -%}
  create table if not exists {{ files }} (model varchar, file varchar, signature varchar);
  create table if not exists {{ changes }} (seq bigint, model varchar, day date, full_rebuild boolean, recorded_at timestamp);
  create table if not exists {{ state }} (model varchar, fingerprint varchar, inputs_fingerprint varchar,
      watermarks varchar, built_at timestamp, full_rebuild_at timestamp, last_build varchar);
{%- endmacro %}

{% macro warehouse_sql_list(values, kind='varchar') -%}
  {%- if values | length == 0 -%}null{%- else -%}
  {%- for value in values -%}cast('{{ value | string | replace("'", "''") }}' as {{ kind }}){% if not loop.last %}, {% endif %}{%- endfor -%}
  {%- endif -%}
{%- endmacro %}

{% macro warehouse_state_row(model_name) -%}
  {%- set rows = run_query("select fingerprint, inputs_fingerprint, watermarks from " ~ warehouse_bookkeeping('_warehouse_state') ~ " where model = '" ~ model_name ~ "'") -%}
  {%- if rows | length == 0 -%}{{ return(none) }}{%- endif -%}
  {{ return({'fingerprint': rows[0][0], 'inputs_fingerprint': rows[0][1], 'watermarks': fromjson(rows[0][2] or '{}')}) }}
{%- endmacro %}

{% macro warehouse_save_state(model_name, fingerprint, inputs_fingerprint, watermarks, full) -%}
  {%- set state = warehouse_bookkeeping('_warehouse_state') -%}
  insert into {{ state }} (model) select '{{ model_name }}' where not exists (select 1 from {{ state }} where model = '{{ model_name }}');
  update {{ state }} set fingerprint = '{{ fingerprint }}', inputs_fingerprint = '{{ inputs_fingerprint }}',
      watermarks = '{{ tojson(watermarks) }}', built_at = now()::timestamp,
      full_rebuild_at = {% if full %}now()::timestamp{% else %}full_rebuild_at{% endif %},
      last_build = '{{ "full" if full else "incremental" }}'
  where model = '{{ model_name }}';
{%- endmacro %}

{#- The table is written beside the target and swapped in, so readers never see it half built. -#}
{% macro warehouse_replace_table(target, select_sql) -%}
  create or replace table {{ target }} as {{ select_sql }}
{%- endmacro %}

{#- What the models in `windows` ({model: [after, up_to]}, sequence numbers of _warehouse_changes) reported
    in those windows: {'full': true when any of them was rebuilt in full (the caller then rebuilds in full
    too), 'days': the distinct days they changed, as text, in order}. -#}
{% macro warehouse_changed_days(windows) -%}
  {%- set since = [] -%}
  {%- for name, window in windows.items() | sort -%}
    {%- do since.append("(model = '" ~ name ~ "' and seq > " ~ window[0] ~ " and seq <= " ~ window[1] ~ ")") -%}
  {%- endfor -%}
  {%- set rows = run_query("select count(*) filter (where full_rebuild), coalesce(string_agg(distinct cast(day as varchar), ',' order by cast(day as varchar)), '') from "
      ~ warehouse_bookkeeping('_warehouse_changes') ~ " where " ~ since | join(' or ')) -%}
  {{ return({'full': rows[0][0] > 0, 'days': rows[0][1].split(',') if rows[0][1] else []}) }}
{%- endmacro %}

{#- The rows of `sql` that win per `grain` key: the first by `order_by`, exactly as
    `qualify row_number() over (partition by <grain> order by <order_by>) = 1` picks them (NULL keys
    count as equal, as there). Only the keys that occur more than once go through the window: at a
    year of history about 4 % of the keys repeat, and sorting 20M one-row partitions of every column
    was most of a full build (docs/performance.md, "A year on the desktop"). -#}
{% macro warehouse_latest_rows(sql, grain, order_by) -%}
  {%- set keys = grain | join(', ') -%}
  {%- set same_key = [] -%}
  {%- for column in grain -%}
    {%- do same_key.append('source_rows.' ~ column ~ ' is not distinct from repeated.' ~ column) -%}
  {%- endfor -%}
with source_rows as not materialized ({{ sql }}),
repeated as (select {{ keys }} from source_rows group by all having count(*) > 1)
(select source_rows.* from source_rows anti join repeated on {{ same_key | join(' and ') }})
union all
(select source_rows.* from source_rows semi join repeated on {{ same_key | join(' and ') }}
 qualify row_number() over (partition by {{ keys }} order by {{ order_by }}) = 1)
{%- endmacro %}

{#- ---------------------------------------------------------------- latest_file_wins -#}

{#- The end of both materializations: post-hooks around the commit, then the model's docs. -#}
{% macro warehouse_commit(target, post_hooks, model) -%}
  {{ run_hooks(post_hooks, inside_transaction=True) }}
  {{ adapter.commit() }}
  {{ run_hooks(post_hooks, inside_transaction=False) }}
  {% do persist_docs(target, model) %}
{%- endmacro %}

{% materialization latest_file_wins, adapter='duckdb' %}
  {%- set target = this.incorporate(type='table') -%}
  {%- set grain = config.require('grain') -%}
  {%- set change_date = config.require('change_date') -%}
  {%- set order_by = '_file_date desc, _source_blob desc, _file_row desc' -%}
  {%- set keys = grain | join(', ') -%}
  {%- set fingerprint = local_md5('latest_file_wins v1|' ~ sql ~ '|' ~ keys ~ '|' ~ change_date) -%}
  {%- set files_table = warehouse_bookkeeping('_warehouse_files') -%}
  {%- set changes_table = warehouse_bookkeeping('_warehouse_changes') -%}
  {%- set tmp = '__lfw_' ~ this.identifier -%}

  {{ run_hooks(pre_hooks, inside_transaction=False) }}
  {{ run_hooks(pre_hooks, inside_transaction=True) }}

  {%- set existing = adapter.get_relation(database=this.database, schema=this.schema, identifier=this.identifier) -%}
  {%- set state = warehouse_state_row(this.identifier) -%}
  {%- set full = should_full_refresh() or existing is none or not existing.is_table or state is none
                 or state['fingerprint'] != fingerprint -%}

  {#- The files present now and their signatures (size, modification time, the sync's write id). -#}
  {%- set files = run_query("select distinct _source_file from (" ~ sql ~ ") as source_rows").columns[0].values() | list -%}
  {% call statement('current_files') %}
    create or replace temp table {{ tmp }}_files as
    select b.filename as file,
           cast(b.size as varchar) || '-' || cast(epoch_us(b.last_modified) as varchar) || '-' || coalesce(k.write_id, '') as signature
    from read_blob([{{ warehouse_sql_list(files) }}]) as b
    left join (
        select file_name, cast(value as varchar) as write_id
        from parquet_kv_metadata([{{ warehouse_sql_list(files) }}])
        where key = cast('pipeline.write_id' as blob)
    ) as k on k.file_name = b.filename
  {% endcall %}

  {%- set seq = run_query("select coalesce(max(seq), 0) + 1 from " ~ changes_table).columns[0].values()[0] -%}

  {% if full %}
    {% call statement('main') %}
      {{ warehouse_replace_table(target, warehouse_latest_rows(sql, grain, order_by)) }};
      delete from {{ changes_table }} where model = '{{ this.identifier }}';
      insert into {{ changes_table }} values ({{ seq }}, '{{ this.identifier }}', null, true, now()::timestamp);
    {% endcall %}
    {%- set build = 'full' -%}
  {% else %}
    {%- set diff = run_query(
        "select c.file, r.file is null from " ~ tmp ~ "_files c left join (select file, signature from " ~ files_table
        ~ " where model = '" ~ this.identifier ~ "') r on r.file = c.file and r.signature = c.signature where r.file is null"
        ~ " union all select r.file, false from " ~ files_table ~ " r where r.model = '" ~ this.identifier
        ~ "' and not exists (select 1 from " ~ tmp ~ "_files c where c.file = r.file and c.signature = r.signature)") -%}
    {%- set new_files = [] -%}
    {%- set stale_files = [] -%}
    {%- for row in diff -%}
      {%- if row[1] -%}{%- do new_files.append(row[0]) -%}{%- else -%}{%- do stale_files.append(row[0]) -%}{%- endif -%}
    {%- endfor -%}
    {% call statement('main') %}
      {%- if new_files or stale_files %}
      -- Rows of new or changed files (DuckDB reads only those files: the filter on the file name prunes the rest).
      create or replace temp table {{ tmp }}_new as
      select * from ({{ sql }}) as source_rows where _source_file in ({{ warehouse_sql_list(new_files) }});
      -- Keys whose current winner came from a changed or removed file: recomputed from every file present.
      create or replace temp table {{ tmp }}_lost as
      select {{ keys }} from {{ target }} where _source_file in ({{ warehouse_sql_list(stale_files) }});
      create or replace temp table {{ tmp }}_winners as
      select * from (
          select * from {{ tmp }}_new
          union all by name
          select t.* from {{ target }} as t semi join {{ tmp }}_new as n using ({{ keys }})
              anti join {{ tmp }}_lost as l using ({{ keys }})
          {%- if stale_files %}
          union all by name
          select s.* from ({{ sql }}) as s semi join {{ tmp }}_lost as l using ({{ keys }})
          {%- endif %}
      ) as candidates
      qualify row_number() over (partition by {{ keys }} order by {{ order_by }}) = 1;
      create or replace temp table {{ tmp }}_days as
      select {{ change_date }} as day from {{ target }} as t
          semi join (select {{ keys }} from {{ tmp }}_new union all select {{ keys }} from {{ tmp }}_lost) as k using ({{ keys }})
      union
      select {{ change_date }} from {{ tmp }}_winners;
      delete from {{ target }} as t using (select {{ keys }} from {{ tmp }}_new union select {{ keys }} from {{ tmp }}_lost) as k
          where {% for key in grain %}t.{{ key }} = k.{{ key }}{% if not loop.last %} and {% endif %}{% endfor %};
      insert into {{ target }} by name select * from {{ tmp }}_winners;
      insert into {{ changes_table }}
          select {{ seq }}, '{{ this.identifier }}', day, false, now()::timestamp from {{ tmp }}_days;
      {%- else %}
      -- No file is new, changed or gone: nothing to do.
      select 1;
      {%- endif %}
    {% endcall %}
    {%- set build = 'incremental: ' ~ new_files | length ~ ' new or changed file(s), ' ~ (stale_files | length) ~ ' changed or removed' -%}
  {% endif %}

  {% call statement('record_files') %}
    delete from {{ files_table }} where model = '{{ this.identifier }}';
    insert into {{ files_table }} select '{{ this.identifier }}', file, signature from {{ tmp }}_files;
    {{ warehouse_save_state(this.identifier, fingerprint, '', {}, full) }}
  {% endcall %}
  {% do log(this.identifier ~ ': ' ~ build, info=false) %}

  {{ warehouse_commit(target, post_hooks, model) }}
  {{ return({'relations': [target]}) }}
{% endmaterialization %}

{#- ---------------------------------------------------------------- incremental_by_day -#}

{#- Walk a node's parents through views: incremental (latest_file_wins) inputs, other tables, views. -#}
{% macro warehouse_inputs(node_id, found) -%}
  {%- for parent_id in graph.nodes[node_id].depends_on.nodes -%}
    {%- if parent_id.startswith('model.') -%}
      {%- set parent = graph.nodes[parent_id] -%}
      {%- set relation = api.Relation.create(database=parent.database, schema=parent.schema, identifier=parent.alias) -%}
      {%- if parent.config.materialized == 'view' -%}
        {%- do found['views'].append(relation) -%}
        {%- do warehouse_inputs(parent_id, found) -%}
      {%- elif parent.config.materialized == 'latest_file_wins'
               or (parent.config.materialized == 'market_gate' and parent.config.get('day_column')) -%}
        {%- do found['incremental'].append(parent.alias) -%}
      {%- else -%}
        {%- do found['tables'].append(relation) -%}
      {%- endif -%}
    {%- else -%}
      {%- do found['other'].append(parent_id) -%}
    {%- endif -%}
  {%- endfor -%}
  {{ return(found) }}
{%- endmacro %}

{% materialization incremental_by_day, adapter='duckdb' %}
  {%- set target = this.incorporate(type='table') -%}
  {%- set day_column = config.require('day_column') -%}
  {%- set changes_table = warehouse_bookkeeping('_warehouse_changes') -%}

  {{ run_hooks(pre_hooks, inside_transaction=False) }}
  {{ run_hooks(pre_hooks, inside_transaction=True) }}

  {%- set inputs = warehouse_inputs(model.unique_id, {'views': [], 'incremental': [], 'tables': [], 'other': []}) -%}
  {%- set incremental_inputs = inputs['incremental'] | unique | sort -%}
  {#- What the model computes: its SQL, the views it reads through, which inputs are incremental. -#}
  {%- set view_sql = [] -%}
  {%- for view in inputs['views'] | unique(attribute='identifier') | sort(attribute='identifier') -%}
    {%- set rows = run_query("select coalesce(any_value(sql), '') from duckdb_views() where database_name = '" ~ view.database
        ~ "' and schema_name = '" ~ view.schema ~ "' and view_name = '" ~ view.identifier ~ "'") -%}
    {%- do view_sql.append(view.identifier ~ ':' ~ rows[0][0]) -%}
  {%- endfor -%}
  {%- set fingerprint = local_md5('incremental_by_day v1|' ~ sql ~ '|' ~ day_column ~ '|' ~ (incremental_inputs | join(','))
      ~ '|' ~ (view_sql | join('|')) ~ '|' ~ (inputs['other'] | sort | join(','))) -%}
  {#- The content of the other (small) input tables. -#}
  {%- set content = [] -%}
  {%- for relation in inputs['tables'] | unique(attribute='identifier') | sort(attribute='identifier') -%}
    {%- set rows = run_query("select count(*) || ':' || coalesce(cast(sum(hash(t)) as varchar), '') from " ~ relation ~ " as t") -%}
    {%- do content.append(relation.identifier ~ '=' ~ rows[0][0]) -%}
  {%- endfor -%}
  {%- set inputs_fingerprint = local_md5(content | join('|')) -%}

  {%- set existing = adapter.get_relation(database=this.database, schema=this.schema, identifier=this.identifier) -%}
  {%- set state = warehouse_state_row(this.identifier) -%}
  {%- set watermarks = {} -%}
  {%- for name in incremental_inputs -%}
    {%- set rows = run_query("select coalesce(max(seq), 0) from " ~ changes_table ~ " where model = '" ~ name ~ "'") -%}
    {%- do watermarks.update({name: rows[0][0] | int}) -%}
  {%- endfor -%}
  {%- set full = should_full_refresh() or existing is none or not existing.is_table or state is none
                 or state['fingerprint'] != fingerprint or state['inputs_fingerprint'] != inputs_fingerprint
                 or inputs['other'] | length > 0 or incremental_inputs | length == 0 -%}
  {%- set days = [] -%}
  {%- if not full -%}
    {%- set windows = {} -%}
    {%- for name in incremental_inputs -%}
      {%- do windows.update({name: [state['watermarks'].get(name, 0) | int, watermarks[name]]}) -%}
    {%- endfor -%}
    {%- set changed = warehouse_changed_days(windows) -%}
    {%- set full = changed['full'] -%}
    {%- do days.extend(changed['days']) -%}
  {%- endif -%}

  {% call statement('main') %}
    {%- if full %}
    {{ warehouse_replace_table(target, sql) }};
    {%- elif days %}
    delete from {{ target }} where {{ day_column }} in ({{ warehouse_sql_list(days, 'date') }});
    insert into {{ target }} by name
    select * from ({{ sql }}) as model_rows where {{ day_column }} in ({{ warehouse_sql_list(days, 'date') }});
    {%- else %}
    -- No input changed since the last build: nothing to do.
    select 1;
    {%- endif %}
  {% endcall %}
  {% call statement('record_state') %}
    {{ warehouse_save_state(this.identifier, fingerprint, inputs_fingerprint, watermarks, full) }}
  {% endcall %}
  {% do log(this.identifier ~ ': ' ~ ('full' if full else (days | length) ~ ' day(s) recomputed'), info=false) %}

  {{ warehouse_commit(target, post_hooks, model) }}
  {{ return({'relations': [target]}) }}
{% endmaterialization %}

{#- ---------------------------------------------------------------- market_gate -#}

{#- A market's gate (macros/staging.sql, market_gate): a copy of one staging model that is only
    refreshed when the market passed its tests (dbt skips it otherwise, so it keeps the last good
    rows). Over an incremental staging model (`day_column` set) it copies only the days that model
    reported since the gate's own last build, and reports them itself, so the models downstream stay
    incremental; a held gate catches up every day it missed once the market passes again. -#}
{% materialization market_gate, adapter='duckdb' %}
  {%- set target = this.incorporate(type='table') -%}
  {%- set gate_of = config.require('gate_of') -%}
  {%- set day_column = config.get('day_column') -%}
  {%- set changes_table = warehouse_bookkeeping('_warehouse_changes') -%}
  {%- set fingerprint = local_md5('market_gate v1|' ~ sql ~ '|' ~ (day_column or '')) -%}

  {{ run_hooks(pre_hooks, inside_transaction=False) }}
  {{ run_hooks(pre_hooks, inside_transaction=True) }}

  {%- set existing = adapter.get_relation(database=this.database, schema=this.schema, identifier=this.identifier) -%}
  {%- set state = warehouse_state_row(this.identifier) -%}
  {%- set full = should_full_refresh() or existing is none or not existing.is_table or state is none
                 or state['fingerprint'] != fingerprint or not day_column -%}
  {%- set watermarks = {} -%}
  {%- set days = [] -%}
  {%- if day_column -%}
    {%- set newest = run_query("select coalesce(max(seq), 0) from " ~ changes_table ~ " where model = '" ~ gate_of ~ "'").columns[0].values()[0] | int -%}
    {%- do watermarks.update({gate_of: newest}) -%}
    {%- if not full -%}
      {%- set changed = warehouse_changed_days({gate_of: [state['watermarks'].get(gate_of, 0) | int, newest]}) -%}
      {%- set full = changed['full'] -%}
      {%- do days.extend(changed['days']) -%}
    {%- endif -%}
  {%- endif -%}
  {%- set seq = run_query("select coalesce(max(seq), 0) + 1 from " ~ changes_table).columns[0].values()[0] -%}

  {% call statement('main') %}
    {%- if full %}
    {{ warehouse_replace_table(target, sql) }};
    {%- if day_column %}
    delete from {{ changes_table }} where model = '{{ this.identifier }}';
    insert into {{ changes_table }} values ({{ seq }}, '{{ this.identifier }}', null, true, now()::timestamp);
    {%- endif %}
    {%- elif days %}
    delete from {{ target }} where {{ day_column }} in ({{ warehouse_sql_list(days, 'date') }});
    insert into {{ target }} by name
    select * from ({{ sql }}) as gate_rows where {{ day_column }} in ({{ warehouse_sql_list(days, 'date') }});
    insert into {{ changes_table }}
    select {{ seq }}, '{{ this.identifier }}', day, false, now()::timestamp
    from (select unnest([{{ warehouse_sql_list(days, 'date') }}]) as day);
    {%- else %}
    -- The staging model reported no change since the gate's last build: nothing to do.
    select 1;
    {%- endif %}
  {% endcall %}
  {% call statement('record_state') %}
    {{ warehouse_save_state(this.identifier, fingerprint, '', watermarks, full) }}
  {% endcall %}
  {% do log(this.identifier ~ ': ' ~ ('full' if full else (days | length) ~ ' day(s) copied'), info=false) %}

  {{ warehouse_commit(target, post_hooks, model) }}
  {{ return({'relations': [target]}) }}
{% endmaterialization %}
