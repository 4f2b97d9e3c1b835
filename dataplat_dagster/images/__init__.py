"""Image folders: zips of labelled images stored as Dagster assets, their manifest and detail page."""
