"""The CSV dialect flags that `dataset import` and `datasource create` share."""

from __future__ import annotations

import click

from dataplat_dagster.catalog.csv_options import CsvOptions

SEPARATOR_NAMES = {"tab": "\t", "\\t": "\t", "comma": ",", "semicolon": ";", "pipe": "|", "space": " "}


def csv_flags(command):
    """Adds --sep, --decimal, --thousands, --encoding, --no-header, --quotechar, --date-format."""
    for option in reversed([
        click.option("--sep", help="Field separator (',', ';', 'tab', '|', ...). Default: detected."),
        click.option("--decimal", type=click.Choice([".", ","]), help="Decimal separator. Default: detected."),
        click.option("--thousands", help="Thousands separator ('' for none). Default: detected."),
        click.option("--encoding", help="Text encoding (utf-8, cp1252, utf-16, ...). Default: detected."),
        click.option("--no-header", is_flag=True, help="The first row is data: columns are named column_1, column_2, ..."),
        click.option("--quotechar", help="Quote character. Default: detected."),
        click.option("--date-format", help="strptime format of date columns, e.g. '%d/%m/%Y'. Default: detected."),
    ]):
        command = option(command)
    return command


def csv_options(sep, decimal, thousands, encoding, no_header, quotechar, date_format) -> CsvOptions:
    return CsvOptions(
        sep=SEPARATOR_NAMES.get(sep, sep) if sep is not None else None,
        decimal=decimal, thousands=thousands, encoding=encoding,
        header=False if no_header else None, quotechar=quotechar, date_format=date_format,
    )
