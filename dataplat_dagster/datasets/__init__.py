"""Datasets: the asset, its store, its lifecycle (import, rename, delete) and its status."""
