"""Profile: a stored table's statistics, its charts, its HTML report and its Dagster metadata."""
