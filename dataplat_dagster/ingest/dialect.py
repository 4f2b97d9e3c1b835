"""How a flat file is written: the user's overrides and the detected dialect.

``CsvOverrides`` holds what the user forced on the command line; ``Dialect`` is the
result of detection (overrides included) and is what ingest reads the file with.
"""

from __future__ import annotations

import codecs
from dataclasses import asdict, dataclass, fields

from dataplat_dagster.errors import InputError

COLUMN_KINDS = ("integer", "float", "decimal", "boolean", "date", "timestamp", "text")
NULL_SPELLINGS = ("", "NA", "N/A", "n/a", "#N/A", "null", "NULL")
# Only spelled-out booleans: 1/0 and yes/no columns stay numbers and text.
TRUE_SPELLINGS = ("true", "True", "TRUE")
FALSE_SPELLINGS = ("false", "False", "FALSE")
# ``ColumnGuess.date_format`` of ISO 8601 timestamps with a zone (``Z``, ``+02:00``); they are
# stored in UTC. ISO 8601 timestamps without a zone have ``date_format`` None.
ISO_ZONED_FORMAT = "%Y-%m-%dT%H:%M:%S%z"

_SEP_ALIASES = {"\\t": "\t", "tab": "\t", "TAB": "\t"}
_THOUSANDS_CHOICES = (",", ".", " ", "'", "")


@dataclass(frozen=True)
class CsvOverrides:
    """What the user forced; every field left ``None`` is detected."""

    sep: str | None = None
    decimal: str | None = None
    thousands: str | None = None
    encoding: str | None = None
    header: bool | None = None
    quotechar: str | None = None
    date_format: str | None = None

    def __post_init__(self) -> None:
        if self.sep is not None:
            object.__setattr__(self, "sep", _SEP_ALIASES.get(self.sep, self.sep))
        _check_single_char("--sep", self.sep)
        _check_single_char("--quotechar", self.quotechar)
        if self.decimal is not None and self.decimal not in (".", ","):
            raise InputError(f"--decimal must be '.' or ',', not {self.decimal!r}.")
        if self.thousands is not None and self.thousands not in _THOUSANDS_CHOICES:
            raise InputError(
                f"--thousands must be one of ',', '.', ' ', \"'\" or '' (none), not {self.thousands!r}."
            )
        if self.decimal is not None and self.decimal == self.thousands:
            raise InputError(f"--decimal and --thousands are both {self.decimal!r}; they must differ.")
        if self.encoding is not None:
            _check_encoding(self.encoding)

    def given(self) -> tuple[str, ...]:
        """Names of the fields the user set."""
        return tuple(f.name for f in fields(self) if getattr(self, f.name) is not None)


def _check_single_char(flag: str, value: str | None) -> None:
    if value is not None and len(value) != 1:
        raise InputError(f"{flag} must be a single character (use 'tab' or '\\t' for a tab), not {value!r}.")


def _check_encoding(name: str) -> None:
    try:
        codecs.lookup(name)
    except LookupError:
        raise InputError(
            f"--encoding {name!r} is not an encoding Python knows; try 'utf-8', 'cp1252', 'latin-1' or 'utf-16'."
        ) from None


@dataclass(frozen=True)
class ColumnGuess:
    """One column: its final name and the kind of values it holds."""

    name: str
    kind: str
    date_format: str | None = None


@dataclass(frozen=True)
class Dialect:
    """Everything needed to read a flat file as a typed table."""

    encoding: str
    sep: str
    quotechar: str
    has_header: bool
    decimal: str
    thousands: str | None
    newlines_in_values: bool
    columns: tuple[ColumnGuess, ...]
    notes: tuple[str, ...] = ()
    overridden: tuple[str, ...] = ()

    def to_json(self) -> dict:
        data = asdict(self)
        data["columns"] = [asdict(column) for column in self.columns]
        data["notes"] = list(self.notes)
        data["overridden"] = list(self.overridden)
        return data

    @classmethod
    def from_json(cls, data: dict) -> Dialect:
        values = dict(data)
        values["columns"] = tuple(ColumnGuess(**column) for column in data["columns"])
        values["notes"] = tuple(data.get("notes", ()))
        values["overridden"] = tuple(data.get("overridden", ()))
        return cls(**values)

    def describe(self) -> str:
        thousands = "none" if not self.thousands else repr(self.thousands)
        return (
            f"encoding {self.encoding}, separator {_show_char(self.sep)}, decimal {self.decimal!r}, "
            f"thousands {thousands}, header {'yes' if self.has_header else 'no'}, {len(self.columns)} columns"
        )


def _show_char(char: str) -> str:
    return "tab" if char == "\t" else repr(char)
