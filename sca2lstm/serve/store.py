"""The service's one database file (SQLite, standard library): posted observations and issued forecasts.

Durability: WAL journal with ``synchronous=FULL``, so a post the API has acknowledged is on disk
before the response leaves (issued forecasts, which can be issued again, commit with NORMAL: a process
crash keeps them, a power cut may drop the last few); every write is one transaction (all days of a post, or none). The
connection is shared by the server's worker threads behind a lock: SQLite serialises writers anyway,
and the queries are small.

Tables
------
observations(station, date, precipitation, temperature, pet, discharge, updated_at)
    One row per station and day; a column left out of a post keeps its earlier posted value.
data_versions(station, version)
    Bumped in the same transaction as each post, and at each change of the station's warning levels (they decide
    its forecasts' warnings): forecasts are cached per data version.
forecasts(id, station, issue_date, leads, data_version, data_fingerprint, model_sha256, setting,
          table_json, weights_json, created_at, origin, levels_json, weather_id, notes_json, calibration_sha256)
    Every forecast issued to a token holder or by the daily issue (``origin`` 'request' or 'daily'; one asked for
    first and then issued by the daily issue, or issued again after a post, is 'daily'),
    unique per (station, issue date, leads, data version, fingerprint of the station's files, model,
    weather forecast read: ``weather_id``, 0 for none, the model's calibration: ``calibration_sha256``,
    empty in rows stored before it was recorded). Anonymous requests read these but add none.
    ``table_json`` holds each lead's quantiles, P(Q > level) and warned level; ``levels_json`` the
    station's levels it was warned on; ``notes_json`` its notes, each its English text or, where the note has a
    kind (``sca2lstm/notes.py``), ``{"text", "kind", "values"}`` so that it can be said in Chinese too.
weather_forecasts(id, station, issue_date, first_valid, last_valid, members, origin, source, table_csv, raw,
                  created_at)
    Weather forecasts posted for a station (``origin`` 'post') or fetched by the daily issue ('fetch'):
    the issue date they are for, the valid days on which every member has every input the model reads,
    the members a forecast reads (an incomplete one left out), the parsed long table and the content as it came.
daily_issues(id, day, issued_at, summary_json)
    One row per daily issue (``day``: the local date it ran for).
issued_warnings(issue_id, station, forecast_id, level, first_lead, error)
    Each station's warning in each daily issue (``level`` NULL: none; ``error``: the station failed); a station
    issued again that day after a post (:meth:`Store.add_reissue`) points at its latest forecast, and ``level`` is
    the day's warning its alerts said (raised by a re-issue, never lowered within the day).
alerts(id, issue_id, station, change, from_level, to_level, detail_json, delivery_json, created_at, per_channel)
    Every alert sent (a warning that started, rose, fell or ended), with how its delivery went; ``per_channel`` 0
    for an alert stored before delivery was tracked per channel (one channel's "sent" then counted for all).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from datetime import datetime, timezone
from pathlib import Path

from ..notes import note_of, note_record

OBS_COLUMNS = ("precipitation", "temperature", "pet", "discharge")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS observations (
    station TEXT NOT NULL,
    date TEXT NOT NULL,
    precipitation REAL,
    temperature REAL,
    pet REAL,
    discharge REAL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (station, date)
);
CREATE TABLE IF NOT EXISTS data_versions (
    station TEXT PRIMARY KEY,
    version INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS forecasts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    station TEXT NOT NULL,
    issue_date TEXT NOT NULL,
    leads INTEGER NOT NULL,
    data_version INTEGER NOT NULL,
    data_fingerprint TEXT NOT NULL DEFAULT '',
    model_sha256 TEXT NOT NULL,
    setting TEXT NOT NULL,
    table_json TEXT NOT NULL,
    weights_json TEXT NOT NULL,
    created_at TEXT NOT NULL,
    origin TEXT NOT NULL DEFAULT 'request',
    levels_json TEXT NOT NULL DEFAULT '{}',
    weather_id INTEGER NOT NULL DEFAULT 0,
    notes_json TEXT NOT NULL DEFAULT '[]',
    calibration_sha256 TEXT NOT NULL DEFAULT '',
    UNIQUE (station, issue_date, leads, data_version, data_fingerprint, model_sha256, weather_id, calibration_sha256)
);
CREATE TABLE IF NOT EXISTS weather_forecasts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    station TEXT NOT NULL,
    issue_date TEXT NOT NULL,
    first_valid TEXT NOT NULL,
    last_valid TEXT NOT NULL,
    members INTEGER NOT NULL,
    origin TEXT NOT NULL,
    source TEXT NOT NULL,
    table_csv TEXT NOT NULL,
    raw TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS weather_by_station ON weather_forecasts (station, issue_date);
CREATE TABLE IF NOT EXISTS daily_issues (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    day TEXT NOT NULL UNIQUE,
    issued_at TEXT NOT NULL,
    summary_json TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS issued_warnings (
    issue_id INTEGER NOT NULL,
    station TEXT NOT NULL,
    forecast_id INTEGER,
    level TEXT,
    first_lead INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    PRIMARY KEY (issue_id, station)
);
CREATE TABLE IF NOT EXISTS alerts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    issue_id INTEGER NOT NULL,
    station TEXT NOT NULL,
    change TEXT NOT NULL,
    from_level TEXT,
    to_level TEXT,
    detail_json TEXT NOT NULL,
    delivery_json TEXT NOT NULL,
    created_at TEXT NOT NULL,
    per_channel INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX IF NOT EXISTS forecasts_by_station ON forecasts (station, issue_date);
"""

_FIND = ("SELECT * FROM forecasts WHERE station = ? AND issue_date = ? AND leads = ? AND data_version = ? "
         "AND data_fingerprint = ? AND model_sha256 = ? AND weather_id = ? AND calibration_sha256 = ?")
# The forecasts table's columns, in order; a database written before one of them existed is rebuilt.
_FORECAST_COLUMNS = ("id", "station", "issue_date", "leads", "data_version", "data_fingerprint", "model_sha256",
                     "setting", "table_json", "weights_json", "created_at", "origin", "levels_json", "weather_id",
                     "notes_json", "calibration_sha256")
_WEATHER_SUMMARY = "id, station, issue_date, first_valid, last_valid, members, origin, source, created_at"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


class Store:
    """Thread-safe access to the service database at ``path`` (created if absent)."""

    def __init__(self, path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        # isolation_level=None: transactions are explicit (BEGIN IMMEDIATE ... COMMIT) below.
        self._db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None,
                                   timeout=30.0)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._migrate()
        self._db.executescript(_SCHEMA)
        self._migrate_alerts()
        # Data versions in memory: this process is the database's only writer (one server per file).
        self._versions = {r[0]: int(r[1]) for r in self._db.execute("SELECT station, version FROM data_versions")}

    def _migrate(self) -> None:
        """A database written before the forecasts table had all of :data:`_FORECAST_COLUMNS` (the files'
        fingerprint, the levels, the weather forecast read, the data checks' notes, the calibration) keeps its
        forecasts: the table is rebuilt with the key of today, a missing fingerprint and calibration empty (no
        current file or calibration matches them, so they are issued again) and the rest at their defaults (no
        levels, no weather forecast, no notes)."""
        cols = [r[1] for r in self._db.execute("PRAGMA table_info(forecasts)")]
        if not cols or set(_FORECAST_COLUMNS) <= set(cols):
            return
        kept = [c for c in _FORECAST_COLUMNS if c in cols or c == "data_fingerprint"]
        picked = ", ".join(c if c in cols else "''" for c in kept)
        try:
            self._db.executescript(
                "BEGIN IMMEDIATE; ALTER TABLE forecasts RENAME TO forecasts_old; "
                "DROP INDEX IF EXISTS forecasts_by_station;" + _SCHEMA +
                f"INSERT INTO forecasts ({', '.join(kept)}) SELECT {picked} FROM forecasts_old; "
                "DROP TABLE forecasts_old; COMMIT;")
        except BaseException:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise

    def _migrate_alerts(self) -> None:
        """A database whose alerts were stored when one channel's "sent" counted as heard on every channel keeps
        that reading for them (``per_channel`` 0): read per channel, an alert of past weeks whose mail failed
        while its webhook post went through would be mailed at the next issue, long after it was handled."""
        cols = [r[1] for r in self._db.execute("PRAGMA table_info(alerts)")]
        if "per_channel" not in cols:
            self._db.execute("ALTER TABLE alerts ADD COLUMN per_channel INTEGER NOT NULL DEFAULT 0")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # ------------------------------------------------------------------ observations
    def upsert_observations(self, station: str, days: list[dict]) -> int:
        """Store ``days`` (dicts with ``date`` 'YYYY-MM-DD' and any of :data:`OBS_COLUMNS`) in one
        transaction; a value given replaces the stored one, a value left out (None) keeps it.

        Returns the station's new data version.
        """
        now = _now()
        cols = ", ".join(OBS_COLUMNS)
        marks = ", ".join("?" for _ in OBS_COLUMNS)
        update = ", ".join(f"{c} = COALESCE(excluded.{c}, observations.{c})" for c in OBS_COLUMNS)
        sql = (f"INSERT INTO observations (station, date, {cols}, updated_at) VALUES (?, ?, {marks}, ?) "
               f"ON CONFLICT (station, date) DO UPDATE SET {update}, updated_at = excluded.updated_at")
        rows = [(station, d["date"], *(d.get(c) for c in OBS_COLUMNS), now) for d in days]
        return self._change_observations(station, lambda cur: cur.executemany(sql, rows) is not None)

    def delete_observation(self, station: str, date: str) -> int | None:
        """Take back the posted day ``date`` of ``station`` (the file's value, if any, shows again); the new
        data version, or None where nothing was posted for that day."""
        return self._change_observations(station, lambda cur: cur.execute(
            "DELETE FROM observations WHERE station = ? AND date = ?", (station, date)).rowcount > 0)

    def _change_observations(self, station: str, change) -> int | None:
        """Run ``change(cursor)`` and count a new data version of ``station`` in one transaction; the new
        version, or None (nothing written) where ``change`` returns False."""
        with self._lock:
            cur = self._db.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                if not change(cur):
                    cur.execute("ROLLBACK")
                    return None
                cur.execute("INSERT INTO data_versions (station, version) VALUES (?, 1) "
                            "ON CONFLICT (station) DO UPDATE SET version = version + 1", (station,))
                version = cur.execute("SELECT version FROM data_versions WHERE station = ?",
                                      (station,)).fetchone()[0]
                cur.execute("COMMIT")
            except BaseException:
                cur.execute("ROLLBACK")
                raise
            self._versions[station] = int(version)
        return int(version)

    def count_levels_change(self, station: str) -> int:
        """Count a new data version of ``station`` for a change of its warning levels (its metadata file, written
        by ``PUT /stations/{station}/levels``): the warning of its forecast in today's issue was decided on the
        levels before, so it is named by :meth:`posted_since` and issued again that morning, as after a post. The
        new version."""
        return self._change_observations(station, lambda cur: True)

    def observations_at_version(self, station: str) -> tuple[int, list[dict]]:
        """``(data version, every posted row)`` of ``station``, read together (no post in between)."""
        with self._lock:
            rows = self._db.execute(f"SELECT date, {', '.join(OBS_COLUMNS)} FROM observations WHERE station = ? "
                                    "ORDER BY date", (station,)).fetchall()
            return self._versions.get(station, 0), [dict(r) for r in rows]

    def data_version(self, station: str) -> int:
        """0 until the first post for ``station``, then one more per post (and per change of its warning levels)."""
        return self._versions.get(station, 0)

    def posted_counts(self) -> dict[str, int]:
        with self._lock:
            rows = self._db.execute("SELECT station, COUNT(*) FROM observations GROUP BY station").fetchall()
        return {r[0]: int(r[1]) for r in rows}

    # ------------------------------------------------------------------ forecasts
    def find_forecast(self, station: str, issue_date: str, leads: int, data_version: int, data_fingerprint: str,
                      model_sha256: str, weather_id: int = 0, calibration_sha256: str = "") -> dict | None:
        """The recorded forecast of this key, or None."""
        with self._lock:
            row = self._db.execute(_FIND, (station, issue_date, leads, data_version, data_fingerprint,
                                           model_sha256, weather_id, calibration_sha256)).fetchone()
        return _forecast_row(row) if row else None

    def add_forecast(self, station: str, issue_date: str, leads: int, data_version: int, data_fingerprint: str,
                     model_sha256: str, setting: str, table: list[dict], weights: dict,
                     levels: dict | None = None, origin: str = "request", weather_id: int = 0,
                     notes: list | None = None, calibration_sha256: str = "") -> dict:
        """Record an issued forecast (``weather_id``: the weather forecast it read, 0 for none; ``notes``: what
        the station's data checks found; ``calibration_sha256``: the model's calibration it was issued with); if
        the same key is already there (a concurrent request issued it first), keep the earlier row and return it."""
        with self._lock:
            cur = self._db.cursor()
            # NORMAL, not FULL, for this one: an issued forecast can be issued again from the data and the
            # model, so it does not wait for an fsync of its own (it survives a crash of the process; a
            # power cut may drop the last few). The next FULL commit, a post, syncs it along.
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("BEGIN IMMEDIATE")
            try:
                cur.execute(
                    "INSERT OR IGNORE INTO forecasts (station, issue_date, leads, data_version, data_fingerprint, "
                    "model_sha256, setting, table_json, weights_json, created_at, origin, levels_json, weather_id, "
                    "notes_json, calibration_sha256) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (station, issue_date, leads, data_version, data_fingerprint, model_sha256, setting,
                     json.dumps(table), json.dumps(weights), _now(), origin, json.dumps(levels or {}), weather_id,
                     json.dumps([note_record(n) for n in notes or []], ensure_ascii=False), calibration_sha256))
                row = cur.execute(_FIND, (station, issue_date, leads, data_version, data_fingerprint,
                                          model_sha256, weather_id, calibration_sha256)).fetchone()
                cur.execute("COMMIT")
            except BaseException:
                cur.execute("ROLLBACK")
                raise
            finally:
                cur.execute("PRAGMA synchronous=FULL")
        return _forecast_row(row)

    def mark_daily(self, forecast_id: int) -> None:
        """Record that the daily issue issued the stored forecast ``forecast_id`` (``origin`` 'daily'): one a token
        holder asked for first, with the same key, is the one the issue warned and alerted on."""
        with self._lock:
            self._db.execute("UPDATE forecasts SET origin = 'daily' WHERE id = ?", (int(forecast_id),))

    def forecasts(self, station: str, limit: int = 50) -> list[dict]:
        """The latest ``limit`` forecasts issued for ``station``, newest issue date first."""
        with self._lock:
            rows = self._db.execute("SELECT * FROM forecasts WHERE station = ? ORDER BY issue_date DESC, id DESC "
                                    "LIMIT ?", (station, limit)).fetchall()
        return [_forecast_row(r) for r in rows]


    # ------------------------------------------------------------------ weather forecasts
    def add_weather(self, station: str, issue_date: str, first_valid: str, last_valid: str, members: int,
                    origin: str, source: str, table_csv: str, raw: str) -> dict:
        """Record a weather forecast for ``station`` (one transaction); its summary row (no table, no raw)."""
        with self._lock:
            cur = self._db.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                cur.execute("INSERT INTO weather_forecasts (station, issue_date, first_valid, last_valid, members, "
                            "origin, source, table_csv, raw, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                            (station, issue_date, first_valid, last_valid, members, origin, source, table_csv,
                             raw, _now()))
                row = cur.execute(f"SELECT {_WEATHER_SUMMARY} FROM weather_forecasts WHERE id = ?",
                                  (cur.lastrowid,)).fetchone()
                cur.execute("COMMIT")
            except BaseException:
                cur.execute("ROLLBACK")
                raise
        return dict(row)

    def weather_summaries(self, station: str | None = None, limit: int | None = None) -> list[dict]:
        """Summaries of the stored weather forecasts (of ``station``, or all), newest first."""
        where, args = ("WHERE station = ? ", [station]) if station is not None else ("", [])
        tail = " LIMIT ?" if limit is not None else ""
        with self._lock:
            rows = self._db.execute(f"SELECT {_WEATHER_SUMMARY} FROM weather_forecasts {where}ORDER BY id DESC{tail}",
                                    args + ([limit] if limit is not None else [])).fetchall()
        return [dict(r) for r in rows]

    def weather_tables(self, station: str) -> list[dict]:
        """Every stored weather forecast of ``station``, oldest first: its summary and ``table_csv``, its parsed long
        table (read in one query: the station's archive, ``GET /stations/{station}/weather_archive.csv``)."""
        with self._lock:
            rows = self._db.execute(f"SELECT {_WEATHER_SUMMARY}, table_csv FROM weather_forecasts WHERE station = ? "
                                    "ORDER BY id", (station,)).fetchall()
        return [dict(r) for r in rows]

    def weather_table(self, weather_id: int) -> str:
        """The parsed long table (CSV text) of a stored weather forecast."""
        with self._lock:
            row = self._db.execute("SELECT table_csv FROM weather_forecasts WHERE id = ?", (weather_id,)).fetchone()
        if row is None:
            raise KeyError(weather_id)
        return row[0]

    # ------------------------------------------------------------------ daily issues and alerts
    def daily_issue_of(self, day: str) -> dict | None:
        """The daily issue that ran for local date ``day`` ('YYYY-MM-DD'), or None."""
        with self._lock:
            row = self._db.execute("SELECT * FROM daily_issues WHERE day = ?", (day,)).fetchone()
        return {**dict(row), "summary": json.loads(row["summary_json"])} if row else None

    def last_daily_issue(self) -> dict | None:
        """The latest daily issue's day and summary (stations issued, failed, alerts, delivery at the issue),
        ``undelivered_alerts``: how many of its alerts a channel has still not taken (the resends since the issue
        counted), ``posted_since_issue``: the stations whose observations (or levels) were posted after their forecast in
        it was made (its warning and alerts are of the data before, until it is issued again), and the summary's
        ``reissued`` where stations were issued again after a post (:meth:`add_reissue`); or None."""
        with self._lock:
            row = self._db.execute("SELECT * FROM daily_issues ORDER BY day DESC LIMIT 1").fetchone()
            if row is None:
                return None
        stale = self.posted_since(row["day"])
        # the summary's delivery is the issue's; monitoring must also see that the 08:15 resend got through, or not
        return {"day": row["day"], **json.loads(row["summary_json"]),
                "undelivered_alerts": len(self.undelivered_alerts(row["day"])), "posted_since_issue": stale}

    def posted_since(self, day: str) -> list[str]:
        """The stations whose observations were posted (or taken back), or whose warning levels were set, after their
        forecast in the daily issue of local date ``day`` was made, or after they failed in it: its data version is
        not the station's now. Sorted;
        [] without that issue."""
        with self._lock:
            read = self._db.execute("SELECT w.station, f.data_version FROM issued_warnings w JOIN daily_issues d ON "
                                    "d.id = w.issue_id JOIN forecasts f ON f.id = w.forecast_id WHERE d.day = ?",
                                    (day,)).fetchall()
            issue = self._db.execute("SELECT id, summary_json FROM daily_issues WHERE day = ?", (day,)).fetchone()
            failed = self._db.execute("SELECT station FROM issued_warnings WHERE issue_id = ? AND error IS NOT NULL",
                                      (issue["id"],)).fetchall() if issue else []
        # a station that failed in it, with the data version it failed at (an issue stored before it was kept: none)
        at = json.loads(issue["summary_json"]).get("failed_data_versions", {}) if issue else {}
        read += [(s, at[s]) for (s,) in failed if s in at]
        return sorted(s for s, version in read if self._versions.get(s, 0) != version)

    def issued_warning(self, day: str, station: str) -> dict | None:
        """``station``'s row in the daily issue of ``day``: issue_id, forecast_id, level, first_lead, error; or None."""
        with self._lock:
            row = self._db.execute("SELECT w.* FROM issued_warnings w JOIN daily_issues d ON d.id = w.issue_id "
                                   "WHERE d.day = ? AND w.station = ?", (day, station)).fetchone()
        return dict(row) if row else None

    def add_reissue(self, issue_id: int, station: str, forecast_id: int, level: str | None, first_lead: int,
                    alerts: list[dict], reissued: dict) -> None:
        """Record in one transaction that ``station`` was issued again in daily issue ``issue_id`` (after a post):
        its warning row now points at ``forecast_id`` with ``level`` and ``first_lead`` (one that failed in the issue
        is no longer failed, in the summary too); ``alerts`` (as
        :meth:`add_daily_issue` takes them) are added to the issue; where there are any, the station's earlier
        alerts of that issue are marked ``replaced_by`` the first new one's id in their delivery, so they are not
        sent again after it (:meth:`undelivered_alerts`); ``reissued`` is appended to the summary's ``reissued``."""
        now = _now()
        with self._lock:
            cur = self._db.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                cur.execute("UPDATE issued_warnings SET forecast_id = ?, level = ?, first_lead = ?, error = NULL "
                            "WHERE issue_id = ? AND station = ?", (forecast_id, level, first_lead, issue_id, station))
                if alerts:
                    newer = alerts[0].get("detail", {}).get("id")
                    older = cur.execute("SELECT id, delivery_json FROM alerts WHERE issue_id = ? AND station = ?",
                                        (issue_id, station)).fetchall()
                    cur.executemany("UPDATE alerts SET delivery_json = ? WHERE id = ?",
                                    [(json.dumps({**json.loads(d or "{}"), "replaced_by": newer}), i)
                                     for i, d in older])
                    cur.executemany("INSERT INTO alerts (issue_id, station, change, from_level, to_level, detail_json, "
                                    "delivery_json, created_at, per_channel) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1)",
                                    [(issue_id, a["station"], a["change"], a.get("from_level"), a.get("to_level"),
                                      json.dumps(a.get("detail", {})), json.dumps(a.get("delivery", {})), now)
                                     for a in alerts])
                summary = json.loads(cur.execute("SELECT summary_json FROM daily_issues WHERE id = ?",
                                                 (issue_id,)).fetchone()[0])
                summary["reissued"] = [*summary.get("reissued", []), reissued]
                if station in summary.get("failed", []):  # failed in the issue, issued now
                    summary["failed"] = [s for s in summary["failed"] if s != station]
                    summary["stations"] = summary.get("stations", 0) + 1
                cur.execute("UPDATE daily_issues SET summary_json = ? WHERE id = ?", (json.dumps(summary), issue_id))
                cur.execute("COMMIT")
            except BaseException:
                cur.execute("ROLLBACK")
                raise

    def last_warnings(self) -> dict[str, str | None]:
        """Each station's warning in its latest daily issue that did not fail (stations never issued: absent)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT w.station, w.level FROM issued_warnings w JOIN (SELECT station, MAX(issue_id) AS i FROM "
                "issued_warnings WHERE error IS NULL GROUP BY station) m ON w.station = m.station AND "
                "w.issue_id = m.i").fetchall()
        return {r[0]: r[1] for r in rows}

    def undelivered(self) -> dict[str, dict[str, str | None]]:
        """Per channel ("webhook", "email"), the stations whose latest alert sent on it failed there: channel ->
        station -> the warning of its latest alert that channel did take (None: no warning, or none ever taken).
        What each channel's readers last heard, where it differs from what was issued: a duty officer who reads
        only e-mail has not heard what only the webhook took."""
        with self._lock:
            rows = self._db.execute("SELECT station, to_level, delivery_json, per_channel FROM alerts "
                                    "ORDER BY id").fetchall()
        heard, failed = {}, {}
        for station, level, delivery, per_channel in rows:
            for channel, state in _channel_states(json.loads(delivery or "{}"), per_channel).items():
                if state == "sent":
                    heard.setdefault(channel, {})[station] = level
                    failed.setdefault(channel, set()).discard(station)
                elif state.startswith("failed"):
                    failed.setdefault(channel, set()).add(station)
        return {c: {s: heard.get(c, {}).get(s) for s in stations} for c, stations in failed.items() if stations}

    def undelivered_alerts(self, day: str) -> list[dict]:
        """The alerts of the daily issue of local date ``day`` that failed on a channel (whatever the others did) and
        were not replaced by a newer one of their station (:meth:`add_reissue`): dicts of id, station, detail (as sent) and delivery, oldest first."""
        with self._lock:
            rows = self._db.execute("SELECT a.id, a.station, a.detail_json, a.delivery_json, a.per_channel FROM alerts a JOIN "
                                    "daily_issues d ON a.issue_id = d.id WHERE d.day = ? ORDER BY a.id",
                                    (day,)).fetchall()
        out = []
        for r in rows:
            delivery = json.loads(r["delivery_json"] or "{}")
            if delivery.get("replaced_by"):  # a newer alert of the station (a re-issue's) said what holds now
                continue
            if any(state.startswith("failed") for state in _channel_states(delivery, r["per_channel"]).values()):
                out.append({"id": r["id"], "station": r["station"], "detail": json.loads(r["detail_json"] or "{}"),
                            "delivery": delivery})
        return out

    def set_delivery(self, deliveries: dict) -> None:
        """Record how alerts were delivered when sent again: alert id -> its delivery."""
        with self._lock:
            self._db.executemany("UPDATE alerts SET delivery_json = ? WHERE id = ?",
                                 [(json.dumps(d), int(i)) for i, d in deliveries.items()])

    def last_alerts(self, stations) -> dict[str, dict]:
        """The latest alert of each of ``stations`` that has one, as it was sent (its detail), by station."""
        with self._lock:
            rows = self._db.execute("SELECT station, detail_json FROM alerts WHERE id IN (SELECT MAX(id) FROM alerts "
                                    "GROUP BY station)").fetchall()
        wanted = set(stations)
        return {r[0]: json.loads(r[1] or "{}") for r in rows if r[0] in wanted}

    def add_daily_issue(self, day: str, summary: dict, warnings: list[dict], alerts: list[dict]) -> int:
        """Record a daily issue, its stations' warnings and its alerts in one transaction; its id.

        ``warnings``: dicts of station, forecast_id, level, first_lead, error; ``alerts``: dicts of station,
        change, from_level, to_level, detail, delivery."""
        now = _now()
        with self._lock:
            cur = self._db.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                cur.execute("INSERT INTO daily_issues (day, issued_at, summary_json) VALUES (?, ?, ?)",
                            (day, now, json.dumps(summary)))
                issue_id = cur.lastrowid
                cur.executemany("INSERT INTO issued_warnings (issue_id, station, forecast_id, level, first_lead, error) "
                                "VALUES (?, ?, ?, ?, ?, ?)",
                                [(issue_id, w["station"], w.get("forecast_id"), w.get("level"), w.get("first_lead", 0),
                                  w.get("error")) for w in warnings])
                cur.executemany("INSERT INTO alerts (issue_id, station, change, from_level, to_level, detail_json, "
                                "delivery_json, created_at, per_channel) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1)",
                                [(issue_id, a["station"], a["change"], a.get("from_level"), a.get("to_level"),
                                  json.dumps(a.get("detail", {})), json.dumps(a.get("delivery", {})), now)
                                 for a in alerts])
                cur.execute("COMMIT")
            except BaseException:
                cur.execute("ROLLBACK")
                raise
        return int(issue_id)

    def alerts(self, limit: int = 100) -> list[dict]:
        """The latest ``limit`` alerts, newest first."""
        with self._lock:
            rows = self._db.execute("SELECT * FROM alerts ORDER BY id DESC LIMIT ?", (limit,)).fetchall()
        out = []
        for r in rows:
            d = dict(r)
            d["detail"] = json.loads(d.pop("detail_json"))
            d["delivery"] = json.loads(d.pop("delivery_json"))
            d.pop("per_channel", None)  # how the store reads the delivery, not part of the alert
            out.append(d)
        return out


def _channel_states(delivery: dict, per_channel: int = 1) -> dict[str, str]:
    """A delivery's channels that were sent on ("sent" or "failed: ..."), without its other keys (``resent_at``)
    and the channels not set up or not asked (None). An alert stored before delivery was tracked per channel
    (``per_channel`` 0) that a channel took counts as taken by all, as it did when it was sent."""
    states = {c: v for c, v in delivery.items() if c in ("webhook", "email") and isinstance(v, str)}
    if not per_channel and "sent" in states.values():
        return {c: "sent" for c in states}
    return states


def _forecast_row(row: sqlite3.Row) -> dict:
    out = dict(row)
    out["table"] = json.loads(out.pop("table_json"))
    out["weights"] = json.loads(out.pop("weights_json"))
    out["levels"] = json.loads(out.pop("levels_json", "{}") or "{}")
    # a note is its English text, or a record of it that says it in other languages too (sca2lstm/notes.py)
    out["notes"] = [note_of(n) for n in json.loads(out.pop("notes_json", "[]") or "[]")]
    return out
