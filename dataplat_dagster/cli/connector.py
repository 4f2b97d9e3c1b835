"""``dataplat connector ...``: create, list, show, edit, delete and test connectors.

A connector is an entry under ``connectors:`` in the project's catalog. Secrets are given
as the names of environment variables (``--password-env VAR``), never as values.
"""

from __future__ import annotations

from dataclasses import dataclass

import click
from pydantic import ValidationError

from dataplat_dagster.catalog import edit_catalog
from dataplat_dagster.catalog.registry import project_catalog
from dataplat_dagster.catalog.models import find_entry
from dataplat_dagster.cli.context import CliContext, pass_context
from dataplat_dagster.cli.catalog_entries import add_entry, delete_entry, catalog_changed
from dataplat_dagster.cli.output import print_json, print_table
from dataplat_dagster.connectors.models import CONNECTOR_TYPES, SECRET_FIELDS, SPEC_BY_TYPE
from dataplat_dagster.connectors.secrets import MASK
from dataplat_dagster.errors import CatalogError, ConnectorError, DataplatError

NETWORK = ("sql", "ftp", "sftp")
BUCKETS = ("s3", "gcs")


@dataclass(frozen=True)
class Setting:
    """A command-line flag and the catalog field it sets, for the types it applies to."""

    flags: str
    field: str
    types: tuple[str, ...]
    help: str
    kind: object = str
    flag: bool = False

    @property
    def name(self) -> str:
        return self.flags.split("/")[0].lstrip("-")


SETTINGS = [
    Setting("--description", "description", CONNECTOR_TYPES, "What the connector is for."),
    Setting("--host", "host", NETWORK, "Server host name or IP address."),
    Setting("--port", "port", NETWORK, "Server port (default: the protocol's).", int),
    Setting("--username", "username", NETWORK, "User to log in as."),
    Setting("--password-env", "password_env", NETWORK, "Name of the environment variable that holds the password."),
    Setting("--dialect", "dialect", ("sql",), "SQLAlchemy dialect: postgresql, mysql, mariadb, sqlite, or dialect+driver."),
    Setting("--database", "database", ("sql",), "Default database; for SQLite, the database file."),
    Setting("--url-env", "url_env", ("sql",), "Name of the environment variable that holds a full SQLAlchemy URL."),
    Setting("--tls/--no-tls", "tls", ("ftp",), "Explicit FTPS (AUTH TLS).", flag=True),
    Setting("--ca-file", "ca_file", ("ftp",), "CA certificate that signed the FTPS server's certificate."),
    Setting("--active/--passive", "passive", ("ftp",), "Active mode (default: passive).", flag=True),
    Setting("--root", "root", ("ftp", "sftp"), "Folder on the server that paths start from."),
    Setting("--private-key", "private_key", ("sftp",), "Private key file."),
    Setting("--passphrase-env", "passphrase_env", ("sftp",), "Name of the environment variable that holds the key's passphrase."),
    Setting("--known-hosts", "known_hosts", ("sftp",), "known_hosts file to verify the host key against (default ~/.ssh/known_hosts)."),
    Setting("--host-key-fingerprint", "host_key_fingerprint", ("sftp",), "Pinned host key fingerprint, SHA256:..."),
    Setting("--insecure-accept-any-host-key/--verify-host-key", "insecure_accept_any_host_key", ("sftp",), "Do not verify the server's host key (unsafe).", flag=True),
    Setting("--bucket", "bucket", BUCKETS, "Bucket name."),
    Setting("--prefix", "prefix", BUCKETS, "Key prefix that paths start from."),
    Setting("--region", "region", ("s3",), "AWS region."),
    Setting("--endpoint-url", "endpoint_url", BUCKETS, "Endpoint of an S3-compatible store or a GCS emulator."),
    Setting("--access-key-env", "access_key_env", ("s3",), "Name of the environment variable that holds the access key id."),
    Setting("--secret-key-env", "secret_key_env", ("s3",), "Name of the environment variable that holds the secret access key."),
    Setting("--gcp-project", "gcp_project", ("gcs",), "Google Cloud project."),
    Setting("--credentials-file", "credentials_file", ("gcs",), "Service-account JSON key file."),
    Setting("--credentials-env", "credentials_env", ("gcs",), "Name of the environment variable that holds the service-account JSON."),
    Setting("--timeout", "timeout_s", CONNECTOR_TYPES, "Seconds to wait for the server.", float),
    Setting("--retries", "retries", CONNECTOR_TYPES, "Attempts on transient network errors.", int),
    Setting("--max-concurrency", "max_concurrency", CONNECTOR_TYPES, "At most this many steps of a run use the connector at once.", int),
]
PATH_FIELDS = ("ca_file", "root", "private_key", "known_hosts", "credentials_file")
FLAG_OF_FIELD = {setting.field: setting.flags.split("/")[0] for setting in SETTINGS}
FLAG_OF_FIELD["options"] = "--option"
# Plain-text secret flags are refused with the flag to use instead.
PLAIN_SECRET_FLAGS = {"password": "--password-env", "secret_key": "--secret-key-env", "access_key": "--access-key-env", "passphrase": "--passphrase-env"}


def connector_settings(command):
    for setting in reversed(SETTINGS):
        types = "all types" if setting.types == CONNECTOR_TYPES else "/".join(setting.types)
        help_text = f"{setting.help} [{types}]"
        if setting.flag:
            command = click.option(setting.flags, setting.name.replace("-", "_"), default=None, help=help_text)(command)
        else:
            metavar = "VAR" if setting.field.endswith("_env") else "PATH" if setting.field in PATH_FIELDS else None
            command = click.option(setting.flags, setting.name.replace("-", "_"), type=setting.kind, metavar=metavar, help=help_text)(command)
    command = click.option("--option", "driver_options", multiple=True, metavar="KEY=VALUE", help="Extra driver option (connect_args), repeatable. [sql]")(command)
    for plain in reversed(PLAIN_SECRET_FLAGS):
        command = click.option(f"--{plain.replace('_', '-')}", plain, hidden=True)(command)
    return command


@click.group()
def connector() -> None:
    """Connectors: credentials and addresses of SQL databases, FTP, SFTP, S3 and GCS."""


@connector.command("create")
@click.argument("type_", metavar="TYPE", type=click.Choice(CONNECTOR_TYPES))
@click.argument("name")
@connector_settings
@pass_context
def connector_create(ctx: CliContext, type_: str, name: str, **given) -> None:
    """Create connector NAME of TYPE (sql, ftp, sftp, s3, gcs) in the project's catalog."""
    values = _given_values(type_, given)
    spec = _validate(type_, name, {"type": type_, **values})
    add_entry(ctx.project, "connectors", name, spec, f"change it with `dataplat connector edit {name}`, or choose another name")
    click.echo(f"Created {type_} connector {name!r}: {spec.address()}")
    _warn_missing_env(name, spec)
    click.echo(f"Test it with: dataplat connector test {name}")


@connector.command("edit")
@click.argument("name")
@connector_settings
@click.option("--unset", "unset", multiple=True, metavar="FLAG", help="Clear a setting back to its default (e.g. --unset port), repeatable.")
@pass_context
def connector_edit(ctx: CliContext, name: str, unset: tuple[str, ...], **given) -> None:
    """Change settings of connector NAME; settings not given stay as they are."""
    with edit_catalog(ctx.project.catalog_path) as catalog:
        current = _find(catalog, ctx, name)
        values = current.model_dump(exclude_unset=True, exclude_defaults=True)
        values.update(_given_values(current.type, given))
        for flag in unset:
            field = _field_of_flag(flag, current.type)
            values.pop(field, None)
        spec = _validate(current.type, name, {**values, "type": current.type})
        catalog.connectors[name] = spec
    catalog_changed(ctx.project)
    click.echo(f"Updated connector {name!r}: {spec.address()}")
    _warn_missing_env(name, spec)


@connector.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the connectors as JSON.")
@pass_context
def connector_list(ctx: CliContext, as_json: bool) -> None:
    """List the project's connectors."""
    catalog = project_catalog(ctx.project)
    entries = [_summary(catalog, name, spec) for name, spec in sorted(catalog.connectors.items())]
    if as_json:
        print_json(entries)
        return
    if not entries:
        click.echo(f"Project {ctx.project.name!r} has no connectors yet: create one with `dataplat connector create TYPE NAME`.")
        return
    print_table(["name", "type", "address", "used by"], [[e["name"], e["type"], e["address"], ", ".join(e["used_by"]) or "-"] for e in entries])


@connector.command("show")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print the connector as JSON.")
@pass_context
def connector_show(ctx: CliContext, name: str, as_json: bool) -> None:
    """Show connector NAME's settings; secrets show as *** and the variable that holds them."""
    catalog = project_catalog(ctx.project)
    spec = _find(catalog, ctx, name)
    entry = _summary(catalog, name, spec)
    if as_json:
        print_json(entry)
        return
    click.echo(f"Connector {name!r} ({spec.type}): {entry['address']}")
    rows = [[key, value] for key, value in entry["settings"].items()]
    rows += [[field, f"{secret['value']} (from ${secret['env']}, {'set' if secret['set'] else 'NOT SET here'})"] for field, secret in entry["secrets"].items()]
    rows.append(["used by", ", ".join(entry["used_by"]) or "-"])
    width = max(len(row[0]) for row in rows)
    for key, value in rows:
        click.echo(f"  {key.ljust(width)}  {value}")


@connector.command("delete")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_context
def connector_delete(ctx: CliContext, name: str, yes: bool) -> None:
    """Delete connector NAME, unless a datasource or exporter uses it."""
    delete_entry(ctx.project, "connectors", name, yes, refuse_if_used=_refuse_if_used)


@connector.command("test")
@click.argument("names", metavar="NAME...", nargs=-1)
@click.option("--all", "test_all", is_flag=True, help="Test every connector of the project.")
@click.option("--write", is_flag=True, help="Also write and delete a small sentinel object.")
@click.option("--json", "as_json", is_flag=True, help="Print the reports as JSON.")
@pass_context
def connector_test(ctx: CliContext, names: tuple[str, ...], test_all: bool, write: bool, as_json: bool) -> None:
    """Test connector NAME step by step; exits 0 only when every step passed."""
    from dataplat_dagster.connectors.registry import open_connector

    catalog = project_catalog(ctx.project)
    if test_all:
        names = tuple(sorted(catalog.connectors))
    if not names:
        raise DataplatError("Name the connector to test, or pass --all.")
    reports = []
    for name in names:
        spec = _find(catalog, ctx, name)
        if not as_json:
            click.echo(f"Testing {spec.type} connector {name!r}: {spec.address()}")
        try:
            with open_connector(name, spec, ctx.project.dir) as resource:
                reports.append(resource.check(write=write))
        except ConnectorError as error:
            reports.append(_unusable_report(name, spec.type, write, str(error)))
        if not as_json:
            _print_steps(reports[-1])
    if as_json:
        print_json(reports[0].to_json() if len(reports) == 1 and not test_all else {"ok": all(r.ok for r in reports), "connectors": [r.to_json() for r in reports]})
    failed = [report for report in reports if not report.ok]
    if failed:
        raise ConnectorError("; ".join(f"connector {r.connector!r} failed at step {r.failed_step.step}: {r.failed_step.message}" for r in failed))
    if not as_json:
        click.echo(f"{'All connectors' if len(reports) > 1 else 'Connector ' + repr(reports[0].connector)} passed{' (with write)' if write else ''}.")


def _print_steps(report) -> None:
    width = max((len(step.step) for step in report.steps), default=4)
    for step in report.steps:
        label = {"passed": "PASS", "failed": "FAIL", "skipped": "SKIP"}[step.outcome]
        click.echo(f"  {label}  {step.step.ljust(width)}  {step.seconds * 1000:8.1f} ms  {step.message}")


def _unusable_report(name: str, type_: str, write: bool, message: str):
    from dataplat_dagster.connectors.checks import CheckReport, StepResult

    return CheckReport(name, type_, [StepResult("configuration", "failed", 0.0, message)], write=write)


def _given_values(type_: str, given: dict) -> dict:
    """The catalog fields set on the command line, refusing flags that do not fit the type."""
    for plain, reference in PLAIN_SECRET_FLAGS.items():
        if given.pop(plain, None) is not None:
            raise click.UsageError(f"--{plain.replace('_', '-')} would put the secret on the command line and in the catalog: store it in an environment variable and pass {reference} VAR.")
    values = {}
    for setting in SETTINGS:
        value = given.pop(setting.name.replace("-", "_"), None)
        if value is None:
            continue
        if type_ not in setting.types:
            raise click.UsageError(f"{setting.flags.split('/')[0]} does not apply to a {type_} connector.")
        if setting.field == "passive":
            value = not value  # the flag is --active/--passive
        values[setting.field] = value
    options = given.pop("driver_options", ())
    if options:
        if type_ != "sql":
            raise click.UsageError(f"--option does not apply to a {type_} connector.")
        values["options"] = dict(_parse_option(option) for option in options)
    return values


def _parse_option(text: str) -> tuple[str, object]:
    key, sep, raw = text.partition("=")
    if not sep or not key:
        raise click.UsageError(f"--option {text!r}: write it as KEY=VALUE, e.g. --option sslmode=require.")
    from dataplat_dagster.connectors.sql import option_value

    return key, option_value(raw)


def _field_of_flag(flag: str, type_: str) -> str:
    wanted = flag.removeprefix("--").replace("-", "_")
    for setting in SETTINGS:
        if wanted in (setting.field, setting.name.replace("-", "_")) and type_ in setting.types:
            return setting.field
    if wanted in ("option", "options") and type_ == "sql":
        return "options"
    raise click.UsageError(f"--unset {flag}: a {type_} connector has no such setting.")


def _validate(type_: str, name: str, data: dict):
    try:
        return SPEC_BY_TYPE[type_].model_validate(data)
    except ValidationError as error:
        problems = []
        for problem in error.errors():
            field = str(problem["loc"][0]) if problem["loc"] else None
            where = FLAG_OF_FIELD.get(field, field)
            message = problem["msg"].removeprefix("Value error, ")
            problems.append(f"{where}: {message}" if where else message)
        raise click.UsageError(f"connector {name!r} is not valid: " + "; ".join(problems)) from None


def _find(catalog, ctx: CliContext, name: str):
    return find_entry(catalog.connectors, "connector", name, ctx.project.name)


def _refuse_if_used(catalog, name: str) -> None:
    dependants = catalog.connector_dependants(name)
    if dependants:
        raise CatalogError(f"Connector {name!r} is used by {', '.join(dependants)}: delete or change those first.")


def _summary(catalog, name: str, spec) -> dict:
    import os

    data = spec.model_dump(mode="json", exclude_defaults=True)
    secrets = {
        field.removesuffix("_env"): {"env": var, "set": var in os.environ, "value": MASK}
        for field in SECRET_FIELDS
        if (var := data.pop(field, None))
    }
    data.pop("type", None)
    return {"name": name, "type": spec.type, "address": spec.address(), "settings": data, "secrets": secrets, "used_by": catalog.connector_dependants(name)}


def _warn_missing_env(name: str, spec) -> None:
    from dataplat_dagster.cli.output import warn
    from dataplat_dagster.connectors.registry import missing_environment

    for var in missing_environment(spec):
        warn(f"{var} is not set in this environment; connector {name!r} needs it to connect.")
