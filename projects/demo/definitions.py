"""Code location of the dataplat project 'demo', built from dataplat.yaml beside this file.

Its main job, ``main``, imports and profiles the demo's sample files and runs the typical
pipeline of ``pipeline.py`` (``make demo`` runs it); ``main_schedule`` runs it every day at
06:00 UTC once switched on in the UI.
"""

import sys
from pathlib import Path

from dagster import AssetSelection, DefaultScheduleStatus, Definitions, ScheduleDefinition, define_asset_job, in_process_executor

from dataplat_dagster import project_definitions

sys.path.insert(0, str(Path(__file__).parent))  # pipeline.py beside this file, however it is loaded
from pipeline import PIPELINE_ASSETS  # noqa: E402

main = define_asset_job(
    "main",
    selection=AssetSelection.groups("demo").materializable(),
    executor_def=in_process_executor,
    description="The demo's main job: import and profile the sample files, then run the pipeline "
    "(datasource → transformations → prediction → timestamped export).",
)
main_schedule = ScheduleDefinition(job=main, cron_schedule="0 6 * * *", execution_timezone="UTC",
                                   default_status=DefaultScheduleStatus.STOPPED)

defs = Definitions.merge(
    project_definitions(__file__),
    Definitions(assets=PIPELINE_ASSETS, jobs=[main], schedules=[main_schedule]),
)
