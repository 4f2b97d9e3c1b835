"""Datasets: flat files detected, ingested into Parquet, profiled and stored."""
