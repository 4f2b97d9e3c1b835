"""Code location of the dataplat project 'demo', built from dataplat.yaml beside this file.

Its main job, ``main``, parses and profiles the demo's sample files (``make demo`` runs it).
"""

from dagster import AssetSelection, Definitions, define_asset_job, in_process_executor

from dataplat_dagster import project_definitions

main = define_asset_job(
    "main",
    selection=AssetSelection.groups("demo"),
    executor_def=in_process_executor,
    description="The demo's main job: import and profile the sample files.",
)

defs = Definitions.merge(project_definitions(__file__), Definitions(jobs=[main]))
