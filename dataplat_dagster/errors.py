"""User-facing errors.

Every error a user can cause (a broken file, a bad name, a missing dataset) is a
``DataplatError``: its message says what is wrong and how to fix it. The CLI prints
it as one paragraph on stderr and exits non-zero, without a traceback.
"""


class DataplatError(Exception):
    """An error the user can act on. ``str(error)`` is the whole message."""

    exit_code = 1


class InputError(DataplatError):
    """The input file (or its options) cannot be read as a table."""


class CatalogError(DataplatError):
    """The project's catalog YAML is invalid, or an object in it is missing or duplicated."""


class WorkspaceError(DataplatError):
    """No workspace or project could be found, or it is malformed."""


class ConnectorError(DataplatError):
    """A connector is misconfigured, or its server refused or failed an operation."""
