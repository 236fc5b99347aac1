"""The daily issue: every morning at a set local time, forecast every station, store the forecasts and
their warnings, and alert when a station's warning starts, rises, falls or ends.

:func:`issue_daily` does one issue for a given clock reading (tests call it with a fixed one);
:func:`run_daily` is the server's loop that calls it at ``--issue_at`` each day. An issue is recorded per
local date: a restart after the issue time issues that day once (catching up), never twice. Between issues the
loop sends again the day's alerts a channel did not take (:func:`resend_undelivered`) and issues again the stations
posted to since their forecast in the day's issue (:func:`reissue_posted`).

Weather: before a station is issued, its weather forecast is fetched where its metadata names a source
(``DIR/meta/<id>.json``, ``"weather": {"source": "open-meteo", ...}``; :mod:`sca2lstm.serve.weather`), with
``Daily.weather``'s client settings, and stored; the forecast then reads it (or the newest stored one that
covers its lead days). A fetch that fails is logged and stored in one line (the issue's ``weather``), and
the station is issued all the same: with an earlier weather forecast that still covers its lead days, else
without one (its ``weather`` and ``setting`` say which).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import HTTPException
from starlette.concurrency import run_in_threadpool

from ..data.station_meta import check_day_time
from ..errors import Sca2lstmError, UsageError
from ..evaluation.warn import warning_change
from .messages import public_detail
from .notify import Notifier, worth_resending
from .weather import FetchSettings

log = logging.getLogger(__name__)


@dataclass
class Daily:
    """The daily issue's settings. ``at``: local time of day (None: no scheduled issue, only on demand);
    ``tz``: its time zone (None: the server's); ``now``: the clock (aware datetimes)."""

    at: dt.time | None = None
    tz: ZoneInfo | None = None
    notifier: Notifier = field(default_factory=Notifier)
    weather: FetchSettings = field(default_factory=FetchSettings)
    now: Callable[[], dt.datetime] = field(default=lambda: dt.datetime.now(dt.timezone.utc))
    # One issue at a time: the scheduled issue and POST /daily_issue may meet, and each would alert.
    lock: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False, compare=False)
    # station -> (its data version, when the loop first saw it; None once a re-issue of that version failed) for the
    # stations posted to since today's issue: a re-issue waits until the posts have stopped for REISSUE_QUIET
    # (:func:`reissue_posted`), and one that failed waits for the next post
    posted_seen: dict = field(default_factory=dict, repr=False, compare=False)

    def local(self, t: dt.datetime) -> dt.datetime:
        return t.astimezone(self.tz) if self.tz is not None else t.astimezone()


def parse_issue_at(text: str) -> dt.time:
    """``--issue_at`` 'HH:MM' as a time of day (one-line UsageError otherwise)."""
    h, m = check_day_time(text, "--issue_at").split(":")
    return dt.time(int(h), int(m))


def parse_timezone(name: str | None) -> ZoneInfo | None:
    if not name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise UsageError(f"--timezone {name!r}: not a time zone name; expected e.g. Europe/London, "
                         "Asia/Shanghai") from None


def next_issue(now: dt.datetime, daily: Daily) -> dt.datetime:
    """The first issue time (local ``daily.at``) after ``now``."""
    local = daily.local(now)
    today = local.replace(hour=daily.at.hour, minute=daily.at.minute, second=0, microsecond=0)
    return today if today > local else (today + dt.timedelta(days=1)).replace(hour=daily.at.hour,
                                                                              minute=daily.at.minute)


def alert_stage(level: dict | None) -> float | None:
    """The water level (m) an alert gives its level by: as it was set (``stage_m``), else its flow through the
    station's rating curve valid on the issue date (the level's ``stage``), to the centimetre, as a gauge is read;
    None without either (no curve; a forecast stored before levels carried ``stage`` is given it when it is read,
    :func:`~sca2lstm.serve.app.in_todays_form`)."""
    level = level or {}
    if level.get("stage_m") is not None:
        return level["stage_m"]
    return round(level["stage"], 2) if level.get("stage") is not None else None


async def issue_daily(svc, daily: Daily, now: dt.datetime | None = None) -> dict:
    """Issue every station once for the local day (see :func:`_issue_daily`); concurrent calls wait for
    each other, so a day is issued and alerted once."""
    async with daily.lock:
        return await _issue_daily(svc, daily, now)


async def _issue_daily(svc, daily: Daily, now: dt.datetime | None = None) -> dict:
    """Issue every station for the local date of ``now`` (default: the clock) unless that day is issued.

    Each station is forecast from its last day with observed flow over the lead days the models share, by
    the version of its model (checkpoint and calibration) taken when the issue starts, and the forecast is
    stored (``origin`` 'daily'). A station's warning is compared with its warning in
    the last daily issue; each change is an alert, sent to the webhook and by e-mail. The issue, every
    station's warning (or why it failed) and the alerts with their delivery are stored together.

    Returns the issue's summary: ``day``, ``stations``, ``failed``, ``alerts`` (or ``skipped``).
    """
    from .app import station_warnings

    now = now or daily.now()
    day = daily.local(now).date().isoformat()
    store = svc.store
    if store.daily_issue_of(day) is not None:
        return {"day": day, "skipped": "already issued"}
    ids = list(svc.stations.ids)
    previous = store.last_warnings()
    channels = daily.notifier.channels
    # Per channel, a station whose last alert it did not take is compared with what that channel's readers last
    # heard, so the change is sent again on it (marked) instead of being lost when the warning stays as it is; the
    # channels that took it are not sent it again.
    unheard = {c: v for c, v in store.undelivered().items() if c in channels}
    # what was last sent to the stations a channel did not acknowledge (it may have got it: a slow one, timed out)
    unacknowledged = store.last_alerts(set().union(*unheard.values()))
    # each station with its newest model: one fine-tuned or replaced since the last look is used from this issue
    # on. The versions are fixed here for the whole issue: one that settles while it runs is the next issue's, so
    # a morning's issue is never half one model's and half its replacement's.
    await run_in_threadpool(svc.forecaster.rescan, True)
    models = {station: svc.forecaster.model(station) for station in ids}
    leads = svc.forecaster.max_leads()
    warnings, alerts, weather = [], [], {}
    # The versions stay loaded while the issue runs (in this process and the workers), whatever replacements of
    # their files requests take and load meanwhile: a process keeps two versions of a file, and two replacements
    # within the issue pushed its version out, failing its later stations.
    with svc.forecaster.holding(models.values()):
        await run_in_threadpool(svc.forecaster.preload, models.values())
        # One station's failure, whatever it is (e.g. a hand-edited metadata file the readers do not check), must
        # not cost the other stations their issue: it is recorded and logged in one line, and the issue goes on.
        for station in ids:
            # The log has each failure's whole line; the issue's record, which anyone reads (GET /health), has it
            # without the server's file paths.
            try:
                fetched = await run_in_threadpool(svc.weather.fetch, station, daily.weather)
            except Exception as e:  # noqa: BLE001 - a failed fetch: the station is issued without it (as documented)
                fetched = f"failed: {_reason(e, day, station)}"
            try:
                _, row = await svc.forecast(station, None, leads, store=True, origin="daily", model=models[station])
            except Exception as e:  # noqa: BLE001 - see above
                detail = _reason(e, day, station)
                log.warning("daily issue %s: station %s failed: %s", day, station, detail)
                # its data version: a post after it (the missing day, a corrected value) is issued again that day
                warnings.append({"station": station, "error": public_detail(detail),
                                 "data_version": store.data_version(station)})
                if fetched is not None:
                    weather[station] = public_detail(fetched)
                continue
            if fetched is not None:
                used = (f"issued with weather forecast {row['weather_id']}" if row.get("weather_id")
                        else "issued without a weather forecast")
                weather[station] = public_detail(f"{fetched}; {used}")
                if fetched.startswith("failed"):
                    log.warning("daily issue %s: station %s: the weather forecast could not be fetched (%s); %s", day,
                                station, fetched[len("failed: "):], used)
            # the notes as the alerts carry them: in their language (the issue's record of warnings reads no notes)
            sw = station_warnings(row, daily.local(now).date(), daily.notifier.language)
            warnings.append({"station": station, "forecast_id": row["id"], "level": sw["warning"],
                             "first_lead": sw["first_lead"]})
            alerts += station_alerts(day, station, row, sw, channels, previous, unheard, unacknowledged)
    delivery = {}
    if alerts and channels:
        delivery = await _send_by_channel(daily.notifier, day, now, {c: [a for a, to in alerts if c in to]
                                                                    for c in channels})
    failed = [w["station"] for w in warnings if w.get("error")]
    summary = {"day": day, "stations": len(ids) - len(failed), "failed": failed, "alerts": len(alerts),
               "delivery": delivery, "weather": weather,
               "failed_data_versions": {w["station"]: w["data_version"] for w in warnings if w.get("error")}}
    store.add_daily_issue(day, summary, warnings, _stored_alerts(alerts, delivery))
    log.info("daily issue %s: %d station(s) issued, %d failed, %d alert(s)%s", day, summary["stations"],
             len(failed), len(alerts), f" ({delivery})" if delivery else "")
    return summary


def station_alerts(day: str, station: str, row: dict, sw: dict, channels, previous: dict, unheard: dict,
                   unacknowledged: dict) -> list[tuple[dict, list]]:
    """The alerts of ``station``'s warning ``sw`` (:func:`~sca2lstm.serve.app.station_warnings` of its forecast
    ``row``): one per distinct change from what a channel last heard, ``(alert, the channels it is for)``.

    ``previous``: station -> its last recorded warning; ``unheard``: channel -> station -> the warning that channel
    last took, where it did not take the station's latest alert; ``unacknowledged``: station -> its last alert as
    sent (its id is kept for the same change sent again). The daily issue and a re-issue after a post share it."""
    from .app import level_values

    values = level_values(sw["levels"])
    lead = sw["leads"][sw["first_lead"] - 1] if sw["first_lead"] else {}
    # what each channel last heard of the station: one alert per distinct change, to the channels it is for
    heard, alerts = {}, []
    for c in channels or (None,):  # no channel: the alert is still recorded (GET /alerts)
        frm = unheard[c][station] if station in unheard.get(c, {}) else previous.get(station)
        heard.setdefault(frm, []).append(c)
    for frm, to in heard.items():
        change = warning_change(frm, sw["warning"], values)
        if change is None:
            continue
        # The same change sent again keeps the id it was first sent with, whatever the day or a restart
        # between: a receiver that got it, but answered too late to count, drops the repeat.
        last = unacknowledged.get(station, {})
        same = (last.get("change"), last.get("from_level"), last.get("to_level")) == (change, frm, sw["warning"])
        alerts.append(({"station": station, "change": change, "from_level": frm,
                        "to_level": sw["warning"], "issue_date": sw["issue_date"],
                        "first_lead": sw["first_lead"] or None, "valid_date": lead.get("valid_date"),
                        "probability": lead.get("probability"), "level_value": values.get(sw["warning"]),
                        "level_unit": "m3/s",
                        # the level as a water level, what the gauge reader knows it by: as set, else
                        # through the station's rating curve (as the page shows it)
                        "level_stage_m": alert_stage(sw["levels"].get(sw["warning"])),
                        "forecast_id": row["id"], "data_age_days": sw["data_age_days"],
                        "notes": sw["notes"],
                        # every retry of one send repeats it: a receiver can drop the repeats
                        "id": last["id"] if same and last.get("id") else
                        f"{day}:{station}:{change}:{frm}:{sw['warning']}",
                        **({"resent_after_failed_delivery": True}
                           if any(station in unheard.get(c, {}) for c in to) else {})}, to))
    return alerts


def _stored_alerts(alerts: list, delivery: dict) -> list[dict]:
    """``(alert, channels)`` pairs and their sending's delivery as the store records them."""
    return [{"station": a["station"], "change": a["change"], "from_level": a["from_level"], "to_level": a["to_level"],
             "detail": a,
             # a channel this alert was not for (it had heard it) is None, as one not set up
             "delivery": {c: v if c in to else None for c, v in delivery.items()}} for a, to in alerts]


#: How long after a send that reached no receiver the day's undelivered alerts are sent again (until one hears
#: them; the next daily issue sends what is still unheard, marked): a webhook down for a few minutes at the issue
#: must not hold a flood warning back until the next morning.
RESEND_AFTER = dt.timedelta(minutes=15)


async def resend_undelivered(svc, daily: Daily, now: dt.datetime | None = None) -> dict | None:
    """Send again the alerts of today's issue on the channels that did not take them (not on those that did),
    under their first ids (a receiver drops repeats), marked ``resent_after_failed_delivery``; record the new
    delivery. The delivery of this sending (None: a channel not tried), or None where there was nothing to send."""
    if not daily.notifier.enabled:
        return None
    now = now or daily.now()
    day = daily.local(now).date().isoformat()
    async with daily.lock:  # not beside an issue, which sends (and records) alerts itself
        pending = svc.store.undelivered_alerts(day)
        # each alert again only on the channels that failed it (the others' readers have it), and not where the
        # channel refused it for good (a webhook's 404): the same request would be refused every 15 minutes
        failed = {c: [p for p in pending if worth_resending(p["delivery"].get(c))] for c in daily.notifier.channels}
        if not any(failed.values()):
            return None
        delivery = await _send_by_channel(daily.notifier, day, now, {
            c: [{**p["detail"], "resent_after_failed_delivery": True} for p in mine] for c, mine in failed.items()})
        issued_at, sent = now.isoformat(timespec="seconds"), {}
        for c, mine in failed.items():
            for p in mine:
                sent[p["id"]] = {**sent.get(p["id"], p["delivery"]), c: delivery[c], "resent_at": issued_at}
        svc.store.set_delivery(sent)
    heard = all(v in (None, "sent") for v in delivery.values())
    (log.info if heard else log.warning)("daily issue %s: %d alert(s) a channel had not taken sent again: %s", day,
                                         len(sent), delivery)
    return delivery


#: How long a station's data must stay as they are after a post before the day's forecast of it is issued again: an
#: observer's burst of posts (a correction after a typo, the day's rain after its flow) makes one re-issue.
REISSUE_QUIET = dt.timedelta(minutes=5)


async def reissue_posted(svc, daily: Daily, now: dt.datetime | None = None) -> list[str]:
    """Issue again the forecast of today's issue of each station posted to since its forecast in it was made
    or whose warning levels were set since (``PUT .../levels`` counts a new data version:
    :meth:`~sca2lstm.serve.store.Store.count_levels_change`; ``/health``'s ``posted_since_issue``), once its data have
    not changed for :data:`REISSUE_QUIET`, so an observer's post at 09:10 after the 08:00 issue, or a level lowered
    then, is alerted that morning, not the next.

    The new forecast is stored (``origin`` 'daily') and becomes the station's forecast of the day's issue. A warning
    that starts or rises above the day's warning is alerted (from what each channel last heard, as the issue does),
    and the station's earlier alerts of the day are marked replaced, so one a channel missed is not sent again after
    the newer one; a warning at or below the day's is not alerted again, and a lower one does not lower the day's
    warning (the next issue says a fall or an end: one late post does not end a warning within the hour). The
    stations issued again (``[]``: none due)."""
    from .app import level_values, station_warnings

    now = now or daily.now()
    day = daily.local(now).date().isoformat()
    store = svc.store
    async with daily.lock:  # not beside the issue or a resend, which send (and record) alerts themselves
        posted = set(store.posted_since(day))
        for station in set(daily.posted_seen) - posted:
            del daily.posted_seen[station]
        due = []
        for station in sorted(posted):
            version = store.data_version(station)
            seen = daily.posted_seen.get(station)
            if seen is None or seen[0] != version:  # a post since the last look: wait for the burst to end
                daily.posted_seen[station] = (version, now)
            elif seen[1] is not None and now - seen[1] >= REISSUE_QUIET:
                due.append(station)
        done = []
        for station in due:
            # tried at this version: a failure is not tried again every pass (the log would have it all day), a
            # success leaves posted_since_issue and with it this record
            daily.posted_seen[station] = (daily.posted_seen[station][0], None)
            recorded = store.issued_warning(day, station)
            try:
                _, row = await svc.forecast(station, None, svc.forecaster.max_leads(), store=True, origin="daily")
            except Exception as e:  # noqa: BLE001 - the day's forecast stands; /health still names the station
                log.warning("daily issue %s: station %s could not be issued again after a post (tried again after "
                            "its next post): %s", day, station, _reason(e, day, station))
                continue
            sw = station_warnings(row, daily.local(now).date(), daily.notifier.language)
            failed = recorded["error"] is not None
            # a station that failed in the issue is issued as the issue would have: every change from what its
            # receivers last heard (its last issued warning) is alerted
            before = store.last_warnings().get(station) if failed else recorded["level"]
            # (a level no longer defined counts as lower than any)
            rises = failed or warning_change(before, sw["warning"], level_values(sw["levels"])) in ("start", "rise")
            alerts, delivery = [], {}
            if rises:
                channels = daily.notifier.channels
                unheard = {c: v for c, v in store.undelivered().items() if c in channels}
                alerts = station_alerts(day, station, row, sw, channels, {station: before}, unheard,
                                        store.last_alerts([station]))
                if alerts and channels:
                    delivery = await _send_by_channel(daily.notifier, day, now, {
                        c: [a for a, to in alerts if c in to] for c in channels})
            level, first = (sw["warning"], sw["first_lead"]) if rises else (before, recorded["first_lead"])
            store.add_reissue(recorded["issue_id"], station, row["id"], level, first, _stored_alerts(alerts, delivery),
                              {"station": station, "at": now.isoformat(timespec="seconds"), "forecast_id": row["id"],
                               "level": sw["warning"], "alerts": len(alerts)})
            log.info("daily issue %s: station %s issued again after a post: %s%s", day, station,
                     sw["warning"] or "no warning", f", {len(alerts)} alert(s) ({delivery})" if alerts else "")
            done.append(station)
    return done


async def _send_by_channel(notifier, day: str, now: dt.datetime, alerts: dict) -> dict:
    """Send each channel its alerts (``alerts``: channel -> list; an empty list sends nothing), one payload a
    channel; the delivery, channel -> "sent", "failed: ..." or None (nothing sent on it)."""
    delivery = {"webhook": None, "email": None}
    for c, mine in alerts.items():
        if mine:
            payload = {"service": "sca2lstm", "issued_at": now.isoformat(timespec="seconds"), "day": day,
                       "alerts": mine}
            # a slow receiver (timeouts, retries) must not hold the service: the sending runs beside it
            delivery[c] = (await run_in_threadpool(notifier.send, payload, (c,)))[c]
    return delivery


def _reason(e: Exception, day: str, station: str) -> str:
    """Why a station failed in the issue of ``day``, on one line: a refusal's or domain error's message, else the
    exception's type and message (unforeseen: its traceback goes to the debug log)."""
    if isinstance(e, HTTPException):
        return " ".join(str(e.detail).split())
    text = " ".join(str(e).split())
    if isinstance(e, Sca2lstmError):
        return text
    log.debug("daily issue %s: station %s", day, station, exc_info=e)
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


async def run_daily(svc, daily: Daily, poll: float = 60.0) -> None:
    """Issue every day at ``daily.at`` (and once at start when today's time has passed unissued); between
    issues, send again every :data:`RESEND_AFTER` the day's alerts that reached no receiver, and issue again the
    stations posted to since the issue (:func:`reissue_posted`, at each pass: every ``poll`` seconds)."""
    resend_at = None
    while True:
        now = daily.now()
        due = daily.local(now).replace(hour=daily.at.hour, minute=daily.at.minute, second=0, microsecond=0)
        if daily.local(now) >= due:
            try:
                await issue_daily(svc, daily, now)
                if resend_at is None:  # the issue has just tried each channel (with its retries)
                    resend_at = now + RESEND_AFTER
                elif now >= resend_at:
                    await resend_undelivered(svc, daily, now)
                    resend_at = now + RESEND_AFTER
                await reissue_posted(svc, daily, now)
            except Exception:  # noqa: BLE001 - the loop must live to the next morning; the log has it
                log.exception("daily issue failed")
        wait = (next_issue(now, daily) - daily.local(now)).total_seconds()
        await asyncio.sleep(max(1.0, min(wait, poll)))
