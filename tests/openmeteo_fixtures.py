"""Recorded Open-Meteo answers, built from the documented layout with values checkable by hand.

Forecast API (daily): ``latitude, longitude, timezone, daily_units, daily{time, precipitation_sum,
temperature_2m_mean, et0_fao_evapotranspiration}``; ensemble API: the same keys for the control and
``<key>_memberNN`` for each member; hourly blocks for stations whose day starts at another hour;
previous-runs API: hourly ``<var>_previous_dayN``.
"""

from __future__ import annotations

import json
import threading
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, HTTPServer, ThreadingHTTPServer

import pandas as pd

UNITS = {"time": "iso8601", "precipitation_sum": "mm", "temperature_2m_mean": "°C",
         "et0_fao_evapotranspiration": "mm"}


def daily_response(first_day: str, precip, temp, et0=None, lat=51.5, lon=-1.2, tz="Europe/London") -> dict:
    n = len(precip)
    days = [str(d.date()) for d in pd.date_range(first_day, periods=n, freq="D")]
    daily = {"time": days, "precipitation_sum": list(precip), "temperature_2m_mean": list(temp)}
    if et0 is not None:
        daily["et0_fao_evapotranspiration"] = list(et0)
    return {"latitude": lat, "longitude": lon, "generationtime_ms": 0.2, "utc_offset_seconds": 0,
            "timezone": tz, "timezone_abbreviation": "GMT", "elevation": 80.0, "daily_units": UNITS, "daily": daily}


def ensemble_response(first_day: str, control, members: list, temp, lat=51.5, lon=-1.2) -> dict:
    """``control``: the control run's rain [n]; ``members``: each member's rain [n]; one temperature for all."""
    doc = daily_response(first_day, control, temp, lat=lat, lon=lon)
    for i, m in enumerate(members, start=1):
        doc["daily"][f"precipitation_sum_member{i:02d}"] = list(m)
        doc["daily"][f"temperature_2m_mean_member{i:02d}"] = list(temp)
    return doc


def hourly_response(first_day: str, days: int, rain_per_hour, temp_per_hour, tz="Asia/Shanghai") -> dict:
    """Hourly values for ``days`` local days from 00:00; ``*_per_hour(ts) -> value``."""
    ts = pd.date_range(first_day, periods=24 * days, freq="h")
    return {"latitude": 30.1, "longitude": 120.2, "timezone": tz, "utc_offset_seconds": 28800,
            "hourly_units": {"time": "iso8601", "precipitation": "mm", "temperature_2m": "°C"},
            "hourly": {"time": [t.strftime("%Y-%m-%dT%H:%M") for t in ts],
                       "precipitation": [rain_per_hour(t) for t in ts],
                       "temperature_2m": [temp_per_hour(t) for t in ts]}}


def previous_runs_response(first_day: str, days: int, leads: int, value) -> dict:
    """Hourly ``precipitation_previous_dayN`` / ``temperature_2m_previous_dayN``; ``value(var, N, ts)``."""
    ts = pd.date_range(first_day, periods=24 * days, freq="h")
    hourly = {"time": [t.strftime("%Y-%m-%dT%H:%M") for t in ts]}
    for n in range(1, leads + 1):
        hourly[f"precipitation_previous_day{n}"] = [value("precipitation", n, t) for t in ts]
        hourly[f"temperature_2m_previous_day{n}"] = [value("temperature", n, t) for t in ts]
    return {"latitude": 51.5, "longitude": -1.2, "timezone": "GMT", "hourly": hourly}


@contextmanager
def loopback_server(answers):
    """A real HTTP server on 127.0.0.1 (an ephemeral port) answering each GET with the next of ``answers``
    (``(status, body)`` or ``(status, body, headers)``; the last repeats). A ``str``/``bytes`` body is sent
    byte for byte, anything else as JSON; ``headers`` are added and may override ``Content-Length`` (a
    body cut short). Yields (base URL, list of (request path, User-Agent) seen)."""
    seen = []
    queue = list(answers)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server API
            seen.append((self.path, self.headers.get("User-Agent")))
            status, body, *more = queue.pop(0) if len(queue) > 1 else queue[0]
            headers = {"Content-Type": "application/json", **(more[0] if more else {})}
            data = body if isinstance(body, bytes) else (body if isinstance(body, str) else json.dumps(body)).encode()
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            if "Content-Length" not in headers:
                self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *a):
            pass

    with _serving(HTTPServer(("127.0.0.1", 0), Handler)) as url:
        yield url, seen


@contextmanager
def _serving(srv, on_exit=None):
    """Run ``srv`` in a thread; yield its base URL; ``on_exit()`` (e.g. to stop a slow answer), then shut it."""
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}"
    finally:
        if on_exit is not None:
            on_exit()
        srv.shutdown()
        srv.server_close()


@contextmanager
def trickling_server(doc, interval: float, seconds: float):
    """A real HTTP server on 127.0.0.1 that answers 200 at once, then sends its body one byte (a space, which
    JSON allows before a value) every ``interval`` seconds for ``seconds``, then ``doc`` as JSON: every
    read of a client gets a byte within ``interval``, and the whole answer takes ``seconds``. A request
    whose client has gone stops sending. Yields (base URL, list of request paths seen)."""
    seen = []
    stop = threading.Event()
    data = json.dumps(doc).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server API
            seen.append(self.path)
            n = int(seconds / interval)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(n + len(data)))
            self.end_headers()
            try:
                for _ in range(n):
                    self.wfile.write(b" ")
                    self.wfile.flush()
                    if stop.wait(interval):
                        return
                self.wfile.write(data)
            except OSError:  # the client gave up and closed the connection
                pass

        def log_message(self, *a):
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    with _serving(srv, on_exit=stop.set) as url:
        yield url, seen
