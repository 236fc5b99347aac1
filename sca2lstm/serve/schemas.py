"""Pydantic models of every body the service reads or writes (they make the OpenAPI page too)."""

from __future__ import annotations

import datetime as dt
import json
from typing import Annotated, Any, Literal

from ..data.reader import QC_RANGES
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# Strict: a string such as "1.5" or a boolean is a wrong type, not a number to coerce.
_Number = Annotated[float, Field(strict=True, allow_inf_nan=False)]


def utc_today() -> dt.date:
    return dt.datetime.now(dt.timezone.utc).date()


#: The earliest day a post may name: older than any daily gauge record, and inside the dates pandas holds.
EARLIEST_DAY = dt.date(1800, 1, 1)
#: Posted name -> (the data files' column whose quality range applies, unit).
POSTED = {"precipitation": ("precipitation", "mm/day"), "temperature": ("temperature", "degC"),
          "pet": ("pet", "mm/day"), "discharge": ("discharge_vol", "m3/s")}


def allowed_range(name: str) -> str:
    """'0..500 mm/day': the reader's quality range of a posted value (:data:`sca2lstm.data.reader.QC_RANGES`)."""
    col, unit = POSTED[name]
    lo, hi = QC_RANGES[col]
    return f"{'' if lo is None else f'{lo:g}'}..{'' if hi is None else f'{hi:g}'} {unit}"


class ObservationDay(BaseModel):
    """One day's observations; any subset of the four values (at least one), the discharge given as it is or, at a
    station with a rating curve, as its water level (``stage``). Values outside the ranges the data reader accepts
    are refused."""

    model_config = ConfigDict(extra="forbid")

    date: dt.date = Field(description=f"the day observed, YYYY-MM-DD; from {EARLIEST_DAY} to today (UTC)")
    precipitation: _Number | None = Field(None, description=f"mm/day, {allowed_range('precipitation')}")
    temperature: _Number | None = Field(None, description=f"degC, daily mean, {allowed_range('temperature')}")
    pet: _Number | None = Field(None, description=f"potential evapotranspiration, {allowed_range('pet')}; only at a "
                                                   "station whose file has a PET column (pet or peti): elsewhere its "
                                                   "PET is derived from temperature, and a posted pet is refused")
    discharge: _Number | None = Field(None, description=f"mean flow, {allowed_range('discharge')}")
    stage: _Number | None = Field(None, description="water level, m on the station's rating curve (a station with one, "
                                                     "in its metadata file): stored as the discharge the curve gives it, "
                                                     "instead of discharge")

    @field_validator("date")
    @classmethod
    def _in_bounds(cls, v: dt.date) -> dt.date:
        today = utc_today()
        if v > today:
            raise ValueError(f"{v} is in the future; allowed {EARLIEST_DAY}..{today} (today, UTC)")
        if v < EARLIEST_DAY:
            raise ValueError(f"{v} is before {EARLIEST_DAY}; allowed {EARLIEST_DAY}..{today} (today, UTC)")
        return v

    @field_validator("precipitation", "temperature", "pet", "discharge")
    @classmethod
    def _in_range(cls, v: float | None, info) -> float | None:
        if v is None:
            return v
        lo, hi = QC_RANGES[POSTED[info.field_name][0]]
        if (lo is not None and v < lo) or (hi is not None and v > hi):
            raise ValueError(f"{v:g} is outside the allowed range {allowed_range(info.field_name)}")
        return v

    @model_validator(mode="after")
    def _some_value(self):
        if all(getattr(self, c) is None for c in (*POSTED, "stage")):
            raise ValueError("a day needs at least one of precipitation, temperature, pet, discharge, stage")
        if self.stage is not None and self.discharge is not None:
            raise ValueError(f"day {self.date} gives both discharge and stage; give one (stage is converted to "
                             "discharge through the station's rating curve)")
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
    notes: list[str] | None = Field(None, description="only where a posted water level lies above the rating curve's "
                                                      "highest gauged stage: each such day, its discharge extrapolated")


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
    model_sha256: str = Field(description="sha256 of the pretrained (default) model")
    fine_tuned_stations: int = Field(description="stations forecast by their own fine-tuned model")
    stations: int
    writes_enabled: bool
    last_daily_issue: dict | None = Field(None, description="the latest daily issue: its day, the stations "
                                                            "issued and failed, the alerts and how they were "
                                                            "delivered at the issue, and undelivered_alerts: how "
                                                            "many of them a channel has still not taken, the "
                                                            "resends since counted, and posted_since_issue: "
                                                            "the stations whose observations were posted, or "
                                                            "whose warning levels were set, after their forecast "
                                                            "in it was made (its warning and alerts "
                                                            "are of the data before, until it is issued again), "
                                                            "and reissued: the stations issued again after a post "
                                                            "(station, at, forecast_id, level, alerts), "
                                                            "failed_data_versions: the data version each failed "
                                                            "station failed at (null: none yet), for monitoring")


class LeadForecast(BaseModel):
    valid_date: dt.date
    lead_days: int
    # None where the model gave no finite value (JSON has no NaN).
    median: float | None
    q05: float | None
    q25: float | None
    q75: float | None
    q95: float | None
    # A station with a rating curve: the same forecast as water levels (m), daily means, through the curve.
    stage_median: float | None = Field(None, description="water level (m) of the median, where the station has a "
                                                         "rating curve")
    stage_q05: float | None = None
    stage_q25: float | None = None
    stage_q75: float | None = None
    stage_q95: float | None = None
    quantiles: dict[str, float | None] = Field(
        default_factory=dict, description="every quantile level the model gives, by column name (m3/s): q05, q25, "
                                          "q75, q95 for the default levels; a model trained with others gives its "
                                          "own (e.g. q10, q90), and null in the q05 .. q95 fields it lacks")
    stage_quantiles: dict[str, float | None] | None = Field(
        None, description="the water level (m) of each of quantiles, where the station has a rating curve")
    p_exceed: dict[str, float | None] = Field(default_factory=dict, description="P(flow > level) for each level")
    warning: str | None = Field(None, description="the highest level whose P(flow > level) reaches its warning "
                                                  "probability on this day, or null")


class LevelOut(BaseModel):
    value: float | None = Field(description="the level as a daily-mean flow, m3/s")
    unit: str = "m3/s"
    warn_probability: float | None = Field(None, description="warn when P(flow > level) reaches this (where "
                                                             "warn_probability_by_lead is given, that applies)")
    warn_probability_by_lead: list[float] | None = Field(
        None, description="the warning probability applied at leads 1, 2, ... where the calibration chose one per lead")
    warn_probability_source: str | None = Field(
        None, description="where the warning probability came from, e.g. 'user', 'station metadata', 'chosen on "
                          "validation (F1)', 'as q2y, the nearest return-period level'")
    source: str = Field("", description="e.g. 'glo, 1971-1975 (30 annual maxima)' or 'station metadata'")
    ci90: list[float] | None = Field(None, description="90 % confidence interval of a fitted level, m3/s")
    stage_m: float | None = Field(None, description="the level as a water level (m), where it was given so")
    stage: float | None = Field(None, description="the level as a water level (m): as given, else through the "
                                                  "station's rating curve valid on the issue date (null: no curve)")


class LevelsIn(BaseModel):
    """A station's named warning levels, replacing those of its metadata file (``{"levels": {}}``: none). The return-period
    levels (q2y .. q20y) are fitted on the record and are not set."""

    model_config = ConfigDict(extra="forbid")

    levels: dict[str, Any] = Field(description="name -> level, e.g. {\"alert\": 45.0, \"danger\": 80.0}: a daily-mean "
                                               "flow in m3/s, or a water level in m with levels_in stage; a name starts "
                                               "with an ASCII letter and holds ASCII letters, digits, '_' or '-'")
    levels_in: Literal["flow", "stage"] = Field("flow", description="flow (m3/s) or stage (water levels in m, "
                                                                    "through the station's rating curve)")
    warn_probability: dict[str, Any] = Field(default_factory=dict, description="name -> the probability of "
                                             "exceedance to warn at, strictly between 0 and 1, e.g. {\"danger\": 0.3}; "
                                             "a level without one takes the one chosen on validation")

    @field_validator("levels", "warn_probability")
    @classmethod
    def _numbers(cls, v: dict) -> dict:
        # one line naming the value (a number written as text, a boolean, null); the rest is checked as the
        # import checks it (sca2lstm.data.station_options.parse_levels)
        for name, x in v.items():
            if isinstance(x, bool) or not isinstance(x, (int, float)):
                raise ValueError(f"{name}={json.dumps(x)} is not a number; expected e.g. {{\"{name}\": 45.0}}")
        return v


class StoredLevel(BaseModel):
    value: float = Field(description="as given: m3/s, or m (a water level)")
    unit: str = Field(description="m3/s or m")
    warn_probability: float | None = None
    flow: float = Field(description="the level as a daily-mean flow, m3/s (a water level through the rating curve)")


class LevelsSetOut(BaseModel):
    station: str
    levels: dict[str, StoredLevel] = Field(description="the named levels now in the station's metadata file")


class StationLevel(LevelOut):
    """A level of ``GET .../levels``: as a forecast's (``stage`` through the curve valid on that issue date)."""


class StationLevelsOut(BaseModel):
    station: str
    issue_date: dt.date = Field(description="the forecast the levels are those of: issued on the station's last day "
                                            "with observed flow, as GET /warnings")
    forecast_id: int | None = Field(None, description="that forecast's id where it is stored (asked for with the "
                                                      "token, or the daily issue's), else null: reading the levels "
                                                      "issues no forecast")
    levels: dict[str, StationLevel] = Field(description="every level the forecasts warn on: the return-period "
                                                        "levels and the named ones")


class HistoryDay(BaseModel):
    date: dt.date
    observed: float | None = None


class WeatherUsed(BaseModel):
    id: int = Field(description="the stored weather forecast's id (GET /stations/{id}/weather)")
    issue_date: dt.date = Field(description="the issue date it is for")
    first_valid: dt.date = Field(description="first valid day on which every member has every input the model reads")
    last_valid: dt.date
    members: int = Field(description="weather members the forecasts read (1: a single run; the flow is their mixture, or "
                                     "with a model without quantiles their mean; "
                                     "a member with no data on a lead day is left out)")
    origin: str = Field(description="'post' (posted with the token) or 'fetch' (the daily issue fetched it)")
    source: str = Field(description="what it came from")
    created_at: str


class WeatherForecastOut(WeatherUsed):
    station: str
    serves_issue_dates: list[dt.date] = Field(
        description="the first and last issue date whose lead days it covers; a forecast of another issue date "
                    "does not read it")


class WeatherListOut(BaseModel):
    station: str
    weather_forecasts: list[WeatherUsed]


class StageScale(BaseModel):
    flow: list[float] = Field(description="flows (m3/s), evenly spaced from 0 to 5 times the answer's highest flow, "
                                          "where the curve gives a water level")
    stage: list[float] = Field(description="the water level (m) of each flow; between rows, interpolate linearly")


class ForecastOut(BaseModel):
    id: int | None = Field(description="row id of the issued forecast in the database; null for a forecast "
                                       "computed for an anonymous request (not stored)")
    station: str
    issue_date: dt.date
    leads: int
    setting: str = Field(description="what the forecast knew: 'issue-time' (no weather forecast) or "
                                     "'issue-time+weather-forecast'")
    weather: WeatherUsed | None = Field(None, description="the weather forecast it read (null: none)")
    data_version: int
    model_sha256: str = Field(description="sha256 of the checkpoint that made it")
    calibration_sha256: str = Field("", description="sha256 of the calibration it was issued with (its keys sorted; "
                                                    "empty: stored before the service recorded it)")
    created_at: str
    cached: bool = Field(description="true when this answer came from the cache, not the model")
    forecast: list[LeadForecast]
    weights: dict[str, float] = Field(description="attention weight of each input on the issue day")
    levels: dict[str, LevelOut] = Field(default_factory=dict, description="the station's warning levels")
    notes: list[str] = Field(default_factory=list, description="what the checks of the station's data found (its "
                                                               "flows changed since fine-tuning, data in another "
                                                               "unit, no flow observed on the issue date, ...): "
                                                               "read them before the numbers; in Chinese where the "
                                                               "request prefers zh (Accept-Language) and the service "
                                                               "has the note in it, else in English")
    history: list[HistoryDay] = Field(description="observed discharge of the days up to the issue day (m3/s)")
    observed_after: list[HistoryDay] = Field(
        description="observed discharge of the valid days already in the data (a forecast of a past day)")
    stage_scale: StageScale | None = Field(
        None, description="only for a station with a rating curve: the curve valid on the issue date as a table, "
                          "from which the page draws its water-level axis")


class VerifiedLead(LeadForecast):
    observed: float | None = Field(None, description="discharge later observed on valid_date, if known")


class IssuedForecast(BaseModel):
    id: int
    issue_date: dt.date
    leads: int
    setting: str
    weather_id: int = Field(0, description="the weather forecast it read (0: none)")
    data_version: int
    model_sha256: str = Field(description="sha256 of the checkpoint that made it")
    calibration_sha256: str = Field("", description="sha256 of the calibration it was issued with (its keys sorted; "
                                                    "empty: stored before the service recorded it)")
    created_at: str
    forecast: list[VerifiedLead]


class ForecastHistoryOut(BaseModel):
    station: str
    forecasts: list[IssuedForecast]


class LeadWarning(BaseModel):
    lead_days: int
    valid_date: dt.date
    warning: str | None = Field(description="the highest level warned on this day, or null")
    probability: float | None = Field(description="P(flow > that level)")


class StationWarnings(BaseModel):
    station: str
    issue_date: dt.date
    forecast_id: int | None
    warning: str | None = Field(description="the highest level warned over the lead days, or null")
    first_lead: int = Field(description="the first lead day of that warning (0: none)")
    levels: dict[str, LevelOut]
    leads: list[LeadWarning]
    data_age_days: int | None = Field(None, description="days from the last day with observed flow (the issue "
                                                         "date) to today, local: 1 when yesterday's flow is in; "
                                                         "more: the warnings rest on old data")
    notes: list[str] = Field(default_factory=list, description="what the checks of the station's data found "
                                                               "(as in its forecast, in the request's language where "
                                                               "the service has it): read them with the warning")


class StationError(BaseModel):
    station: str
    detail: str


class WarningsOut(BaseModel):
    stations: list[StationWarnings]
    errors: list[StationError] = Field(description="stations that could not be forecast, and why")
