"""CSV dialect overrides, shared by uploaded files and file datasources."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CsvOptions(_Strict):
    """Overrides of the detected dialect; anything left out is detected."""

    sep: str | None = Field(None, description="Field separator, e.g. ',', ';', '\\t', '|'.")
    decimal: Literal[".", ","] | None = Field(None, description="Decimal separator.")
    thousands: str | None = Field(None, description="Thousands separator; '' means none.")
    encoding: str | None = Field(None, description="Text encoding, any Python codec name.")
    header: bool | None = Field(None, description="Whether the first row holds the column names.")
    quotechar: str | None = Field(None, description="Quote character.")
    date_format: str | None = Field(None, description="strptime format of date columns, e.g. '%d/%m/%Y'.")
