{#
  dbt-duckdb comments only the columns `adapter.get_columns_in_relation` lists, and for a table in
  an attached DuckLake that list comes back empty: no column comment ever reached the lake. Read
  the relation's columns from `duckdb_columns()` instead (the catalog the lake really keeps).
  dbt opens a transaction for these statements and, on this adapter, never commits it: commit
  them here (and open the next one dbt expects to close).
#}
{% macro duckdb__alter_column_comment(relation, column_dict) %}
  {% set query %}
    select column_name from duckdb_columns()
    where database_name = '{{ relation.database }}' and schema_name = '{{ relation.schema }}'
      and table_name = '{{ relation.identifier }}'
  {% endset %}
  {% set existing_columns = run_query(query).columns[0].values() | list %}
  {% for column_name in column_dict if (column_name in existing_columns) %}
    {% set comment = column_dict[column_name]['description'] %}
    {% set escaped_comment = duckdb_escape_comment(comment) %}
    comment on column {{ relation }}.{{ adapter.quote(column_name) if column_dict[column_name]['quote'] else column_name }} is {{ escaped_comment }};
  {% endfor %}
  commit; begin;
{% endmacro %}
