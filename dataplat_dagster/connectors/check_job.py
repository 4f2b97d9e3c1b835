"""The job that tests a project's connectors from the UI's launchpad.

One op per connector, tagged ``dataplat/connector: <name>`` so that Dagster's tag
concurrency limits can cap the load on one server, and so that the ops run side by side.
The job's config: ``connector`` (a name, or empty for all) and ``write`` (also write and
delete a sentinel). Each connector's steps are logged and attached to its op's output as
metadata; the run fails when any step asked for failed, so the run's status is the answer.
"""

from dagster import Config, Failure, MetadataValue, OpExecutionContext, Output, config_mapping, job, op

from dataplat_dagster.connectors.base import connector_tags

CHECK_JOB = "test_connectors"


class ConnectorCheckConfig(Config):
    connector: str = ""
    write: bool = False


class ConnectorCheckOpConfig(Config):
    enabled: bool = True
    write: bool = False


def connector_check_job(project: str, connector_names: list[str]):
    names = sorted(connector_names)
    ops = {name: _check_op(name) for name in names}

    @config_mapping
    def choose(config: ConnectorCheckConfig) -> dict:
        if config.connector and config.connector not in names:
            raise Failure(f"Project {project!r} has no connector {config.connector!r}; its connectors are: {', '.join(names)}.")
        return {
            "ops": {
                ops[name].name: {"config": {"enabled": config.connector in ("", name), "write": config.write}}
                for name in names
            }
        }

    @job(
        name=CHECK_JOB,
        config=choose,
        description=f"Test the connectors of project {project!r}: config `connector` (one name, or empty for all) and `write`.",
        tags={"dataplat/project": project},
    )
    def test_connectors_job():
        for check in ops.values():
            check()

    return test_connectors_job


def _check_op(name: str):
    @op(
        name=f"test_{name}",
        required_resource_keys={name},
        tags=connector_tags(name),
        description=f"Test connector {name!r} step by step: name resolution, TCP, TLS, login, the database / bucket / root, list, read, and optionally write.",
    )
    def check(context: OpExecutionContext, config: ConnectorCheckOpConfig):
        if not config.enabled:
            context.log.info(f"{name}: not selected")
            return Output(None, metadata={"outcome": "not selected"})
        report = getattr(context.resources, name).check(write=config.write)
        for step in report.steps:
            log = context.log.error if step.outcome == "failed" else context.log.info
            log(f"{name}: {step.step} {step.outcome} in {step.seconds * 1000:.0f} ms: {step.message}")
        metadata = {"steps": MetadataValue.md(_steps_markdown(report)), "report": MetadataValue.json(report.to_json())}
        if not report.ok:
            failed = report.failed_step
            raise Failure(description=f"{name}: {failed.step} failed: {failed.message}", metadata=metadata)
        return Output(None, metadata={"outcome": "passed", **metadata})

    return check


def _steps_markdown(report) -> str:
    lines = ["| step | outcome | ms | message |", "| --- | --- | ---: | --- |"]
    for step in report.steps:
        message = step.message.replace("|", "\\|").replace("\n", " ")
        lines.append(f"| {step.step} | {step.outcome} | {step.seconds * 1000:.0f} | {message} |")
    return "\n".join(lines)
