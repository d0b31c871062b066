"""Analytics: the dbt marts built in the lake (dagster-dbt), and their job."""
