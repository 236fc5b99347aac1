"""Pydantic models of every body the service reads or writes (they make the OpenAPI page too)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# Strict: a string such as "1.5" or a boolean is a wrong type, not a number to coerce.
_Number = Annotated[float, Field(strict=True, allow_inf_nan=False)]


def utc_today() -> dt.date:
    return dt.datetime.now(dt.timezone.utc).date()


class ObservationDay(BaseModel):
    """One day's observations; any subset of the four values (at least one)."""

    model_config = ConfigDict(extra="forbid")

    date: dt.date = Field(description="the day observed, YYYY-MM-DD; not after today (UTC)")
    precipitation: Annotated[_Number, Field(ge=0, le=2000)] | None = Field(None, description="mm/day")
    temperature: Annotated[_Number, Field(ge=-60, le=60)] | None = Field(None, description="degC, daily mean")
    pet: Annotated[_Number, Field(ge=0, le=50)] | None = Field(None, description="potential evapotranspiration, mm/day")
    discharge: Annotated[_Number, Field(ge=0, le=1000000.0)] | None = Field(None, description="mean flow, m3/s")

    @field_validator("date")
    @classmethod
    def _not_future(cls, v: dt.date) -> dt.date:
        today = utc_today()
        if v > today:
            raise ValueError(f"{v} is in the future; observations can be posted up to today ({today}, UTC)")
        return v

    @model_validator(mode="after")
    def _some_value(self):
        if all(getattr(self, c) is None for c in ("precipitation", "temperature", "pet", "discharge")):
            raise ValueError("a day needs at least one of precipitation, temperature, pet, discharge")
        return self


class ObservationsIn(BaseModel):
    """A post: one or more days for one station (at most 366)."""

    model_config = ConfigDict(extra="forbid")

    observations: list[ObservationDay] = Field(min_length=1, max_length=366)

    @field_validator("observations")
    @classmethod
    def _distinct_days(cls, v: list[ObservationDay]) -> list[ObservationDay]:
        seen = set()
        for d in v:
            if d.date in seen:
                raise ValueError(f"day {d.date} appears twice in one post")
            seen.add(d.date)
        return v


class PostResult(BaseModel):
    station: str
    stored: int = Field(description="days written")
    data_version: int


class ObservationRow(BaseModel):
    date: dt.date
    precipitation: float | None = None
    temperature: float | None = None
    pet: float | None = None
    discharge: float | None = None
    posted: bool = Field(description="true where a posted value replaced or added to the data file's day")


class ObservationsOut(BaseModel):
    station: str
    data_version: int
    observations: list[ObservationRow]


class Station(BaseModel):
    id: str
    posted_days: int
    data_version: int


class Health(BaseModel):
    status: str
    model: str
    model_sha256: str
    stations: int
    writes_enabled: bool


class LeadForecast(BaseModel):
    valid_date: dt.date
    lead_days: int
    # None where the model gave no finite value (JSON has no NaN).
    median: float | None
    q05: float | None
    q25: float | None
    q75: float | None
    q95: float | None


class HistoryDay(BaseModel):
    date: dt.date
    observed: float | None = None


class ForecastOut(BaseModel):
    id: int = Field(description="row id of the issued forecast in the database")
    station: str
    issue_date: dt.date
    leads: int
    setting: str
    data_version: int
    model_sha256: str
    created_at: str
    cached: bool = Field(description="true when this answer came from the cache, not the model")
    forecast: list[LeadForecast]
    weights: dict[str, float] = Field(description="attention weight of each input on the issue day")
    history: list[HistoryDay] = Field(description="observed discharge of the 90 days up to the issue day (m3/s)")
    observed_after: list[HistoryDay] = Field(
        description="observed discharge of the valid days already in the data (a forecast of a past day)")


class VerifiedLead(LeadForecast):
    observed: float | None = Field(None, description="discharge later observed on valid_date, if known")


class IssuedForecast(BaseModel):
    id: int
    issue_date: dt.date
    leads: int
    setting: str
    data_version: int
    model_sha256: str
    created_at: str
    forecast: list[VerifiedLead]


class ForecastHistoryOut(BaseModel):
    station: str
    forecasts: list[IssuedForecast]
