"""The job that tests a project's connectors from the UI's launchpad.

Launch ``test_connectors`` with ``connector`` empty to test all of them, or one's name;
``write`` adds the sentinel write. Each connector's steps are logged and attached to the
op's output as metadata (a table of steps and the JSON report); the run fails when any
step asked for failed, so the run's status is the answer.
"""

from dagster import Config, Failure, In, MetadataValue, Nothing, OpExecutionContext, Output, job, op

from dataplat_dagster.connectors.base import CONNECTOR_TAG

CHECK_JOB = "test_connectors"


class ConnectorCheckConfig(Config):
    connector: str = ""
    write: bool = False


def connector_check_job(project: str, connector_names: list[str]):
    names = sorted(connector_names)

    @op(
        name="test_connectors",
        required_resource_keys=set(names),
        ins={"start": In(Nothing)},
        tags={CONNECTOR_TAG: "all"},
        description="Test connectors step by step: name resolution, TCP, TLS, login, the database / bucket / root, list, read, and optionally write.",
    )
    def test_connectors_op(context: OpExecutionContext, config: ConnectorCheckConfig):
        if config.connector and config.connector not in names:
            raise Failure(f"Project {project!r} has no connector {config.connector!r}; its connectors are: {', '.join(names)}.")
        chosen = [config.connector] if config.connector else names
        reports, metadata = [], {}
        for name in chosen:
            report = getattr(context.resources, name).check(write=config.write)
            reports.append(report)
            for step in report.steps:
                log = context.log.info if step.outcome != "failed" else context.log.error
                log(f"{name}: {step.step} {step.outcome} in {step.seconds * 1000:.0f} ms: {step.message}")
            metadata[name] = MetadataValue.md(_steps_markdown(report))
        metadata["report"] = MetadataValue.json({"connectors": [report.to_json() for report in reports]})
        failed = [report for report in reports if not report.ok]
        if failed:
            summary = "; ".join(f"{r.connector}: {r.failed_step.step} failed: {r.failed_step.message}" for r in failed)
            raise Failure(description=summary, metadata=metadata)
        return Output(None, metadata=metadata)

    @job(
        name=CHECK_JOB,
        description=f"Test the connectors of project {project!r} (config: connector = one name or empty for all; write = also write and delete a sentinel).",
        tags={"dataplat/project": project},
    )
    def test_connectors_job():
        test_connectors_op()

    return test_connectors_job


def _steps_markdown(report) -> str:
    lines = ["| step | outcome | ms | message |", "| --- | --- | ---: | --- |"]
    for step in report.steps:
        message = step.message.replace("|", "\\|").replace("\n", " ")
        lines.append(f"| {step.step} | {step.outcome} | {step.seconds * 1000:.0f} | {message} |")
    return "\n".join(lines)
