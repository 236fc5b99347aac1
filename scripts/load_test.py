#!/usr/bin/env python
"""Load test of ``sca2lstm serve``: forecasts at concurrency 16 with posts mixed in, on 127.0.0.1.

Starts the server as a subprocess on a free port, sends a fixed number of requests (default 2,000) from a
thread pool, then checks:
- zero errors (every answer 200, every forecast has ``leads`` finite rows);
- zero lost or duplicated rows: every acknowledged post reads back with its value, each station's
  posted-day count equals the distinct days posted to it, and the forecast history holds each issued
  forecast once per (issue day, leads, data version);
and prints p50/p95/p99 latency of cached forecasts, fresh forecasts (the model ran) and posts.
It is bounded in count (--requests) and time (--time_limit); the server is stopped at the end.

Usage:
    python scripts/load_test.py                         # tiny synthetic basins + a tiny model trained here
    python scripts/load_test.py --model M --data_dir D  # a real checkpoint and data folder
    python scripts/load_test.py --workers 2             # model worker processes of the server (default: its own)
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import datetime as dt
import http.client
import json
import math
import os
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
TOKEN = "load-test-token"
STATIONS_USED = 3


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tiny_model(root: Path, start: str = "1970-10-01") -> tuple[Path, Path]:
    """Three synthetic basins ``start``..1977-12 and a tiny SCA2LSTM pretrained on them for two epochs (about
    10 s): ``(checkpoint, data folder)``."""
    from sca2lstm.config import load_config
    from sca2lstm.data.synthetic import generate_synthetic
    from sca2lstm.training.pretrain import pretrain

    data = root / "camels"
    generate_synthetic(data, n_basins=3, seed=7, start=start, end="1977-12-31")
    cfg = load_config(overrides={
        "data": {"data_dir": str(data), "train_start": "1971-01-01", "train_end": "1974-12-31",
                 "val_start": "1975-01-01", "val_end": "1975-12-31", "test_start": "1976-01-01",
                 "test_end": "1976-12-31"},
        "training": {"seq_len": 60, "spinup": 20, "epochs": 2, "batch_size": 8, "epoch_coverage": 0.5},
        "model": {"hidden_size": 16, "attention_hidden_size": 8, "embedding_size": 4}})
    model = root / "sca2lstm.pth"
    pretrain(cfg, model, data_dir=data, progress=False)
    return model, data


def _start_server(args, data_dir: Path, db: Path, port: int) -> subprocess.Popen:
    env = dict(os.environ, SCA2LSTM_TOKEN=TOKEN, PYTHONPATH=str(REPO))
    cmd = [sys.executable, "-m", "sca2lstm", "serve", "--model", str(args.model), "--data_dir", str(data_dir),
           "--db", str(db), "--host", "127.0.0.1", "--port", str(port), "--quiet"]
    if getattr(args, "workers", None) is not None:
        cmd += ["--workers", str(args.workers)]
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    import httpx

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}: {proc.stderr.read().decode()[-3000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("server did not answer /health within 120 s")


def _pct(values: list[float]) -> str:
    if not values:
        return "n=0"
    a = np.asarray(values) * 1000
    return (f"n={len(a):5d}  p50={np.percentile(a, 50):7.1f} ms  p95={np.percentile(a, 95):7.1f} ms  "
            f"p99={np.percentile(a, 99):7.1f} ms  max={a.max():7.1f} ms")


def run(args) -> int:

    t_start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="sca2lstm_load_") as tmp:
        tmp = Path(tmp)
        if args.model is None:
            print("Training a tiny model on three synthetic basins (no --model given) ...", flush=True)
            args.model, data_dir = tiny_model(tmp)
        else:
            data_dir = Path(args.data_dir) if args.data_dir else None
            if data_dir is None:
                raise SystemExit("--data_dir is needed with --model")
        db, port = tmp / "serve.sqlite", _free_port()
        proc = _start_server(args, data_dir, db, port)
        url = f"http://127.0.0.1:{port}"
        try:
            return _load(args, url, proc, t_start)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    return 1  # not reached; keeps the return type plain


def _load(args, url: str, proc: subprocess.Popen, t_start: float) -> int:
    import httpx

    rng = random.Random(args.seed)
    with httpx.Client(base_url=url, timeout=30) as c:
        stations = [s["id"] for s in c.get("/stations").json()][:STATIONS_USED]
        # Issue days: the station's last days with observed flow (a forecast needs recent observations).
        observed = {s: [o["date"] for o in c.get(f"/stations/{s}/observations").json()["observations"]
                        if o["discharge"] is not None] for s in stations}
        stations = [s for s in stations if len(observed[s]) >= args.issue_days]
        if not stations:
            raise SystemExit(f"no station has {args.issue_days} observed days among its last 90")
        pool = {s: observed[s][-args.issue_days:] for s in stations}
        last = {s: dt.date.fromisoformat(observed[s][-1]) for s in stations}
    # The plan, fixed before the run: forecasts for a pool of issue days (repeats hit the cache until a
    # post to that station changes its data version), one post of a distinct day every --post_every.
    plan = []
    n_posts = 0
    for i in range(args.requests):
        s = rng.choice(stations)
        if args.post_every and i % args.post_every == args.post_every - 1:
            day = last[s] - dt.timedelta(days=400 + n_posts)  # a distinct day per post, inside the data
            plan.append(("post", s, day.isoformat(), round(1.0 + n_posts / 100, 2)))
            n_posts += 1
        else:
            plan.append(("forecast", s, rng.choice(pool[s]), rng.choice([3, 7])))

    # The load itself comes from the standard library's http.client (one keep-alive connection per
    # thread): it costs the shared CPU far less than httpx, so less of the client is in the figures.
    local = threading.local()
    port = int(url.rsplit(":", 1)[1])
    auth = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}

    def send(method: str, path: str, body: bytes | None):
        if not hasattr(local, "conn"):
            local.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            local.conn.request(method, path, body=body, headers=auth)
            r = local.conn.getresponse()
            return r.status, r.read()
        except (OSError, http.client.HTTPException):
            local.conn.close()
            del local.conn
            raise

    def one(item):
        kind, s, day, x = item
        if time.monotonic() - t_start > args.time_limit:
            return kind, None, "time limit reached before this request", None
        t0 = time.perf_counter()
        try:
            if kind == "post":
                status, raw = send("POST", f"/stations/{s}/observations",
                                   json.dumps({"observations": [{"date": day, "discharge": x}]}).encode())
            else:
                status, raw = send("GET", f"/stations/{s}/forecast?issue_date={day}&leads={x}", None)
        except (OSError, http.client.HTTPException) as e:
            return kind, None, f"{type(e).__name__}: {e}", None
        dt_s = time.perf_counter() - t0
        if status != 200:
            return kind, dt_s, f"HTTP {status}: {raw[:200].decode(errors='replace')}", None
        body = json.loads(raw)
        if kind == "forecast":
            rows = body["forecast"]
            if len(rows) != x or not all(isinstance(f[k], float) and math.isfinite(f[k])
                                         for f in rows for k in ("median", "q05", "q95")):
                return kind, dt_s, f"forecast of {s} {day}: {len(rows)} rows for {x} leads or non-finite", None
        return kind, dt_s, None, body

    print(f"{len(plan)} requests ({n_posts} posts) at concurrency {args.concurrency} on {url}, "
          f"stations {stations}", flush=True)
    t0 = time.perf_counter()
    with cf.ThreadPoolExecutor(args.concurrency) as pool:
        results = list(pool.map(one, plan))
    wall = time.perf_counter() - t0

    errors = [(item, err) for item, (_, _, err, _) in zip(plan, results) if err]
    lat = {"cached": [], "fresh": [], "post": []}
    issued = {}
    for (kind, _, _, _), (_, dt_s, err, body) in zip(plan, results):
        if err:
            continue
        if kind == "post":
            lat["post"].append(dt_s)
        else:
            lat["cached" if body["cached"] else "fresh"].append(dt_s)
            issued[body["id"]] = (body["station"], body["issue_date"], body["leads"], body["data_version"])

    # Lost or duplicated rows: read everything back through the API.
    problems = []
    with httpx.Client(base_url=url, timeout=60) as c:
        posted: dict[str, dict[str, float]] = {}
        for (kind, s, day, x), (_, _, err, _) in zip(plan, results):
            if kind == "post" and not err:
                posted.setdefault(s, {})[day] = x
        counts = {st["id"]: st["posted_days"] for st in c.get("/stations").json()}
        for s, days in posted.items():
            if counts.get(s) != len(days):
                problems.append(f"station {s}: {counts.get(s)} posted rows in the database, {len(days)} posted")
            obs = c.get(f"/stations/{s}/observations", params={"start": min(days), "end": max(days)}).json()
            got = {o["date"]: o["discharge"] for o in obs["observations"] if o["posted"]}
            lost = [d for d, v in days.items() if got.get(d) != v]
            if lost:
                problems.append(f"station {s}: {len(lost)} acknowledged posts not read back, e.g. {lost[:3]}")
        for s in stations:
            hist = c.get(f"/stations/{s}/forecasts", params={"limit": 1000}).json()["forecasts"]
            keys = [(h["issue_date"], h["leads"], h["data_version"]) for h in hist]
            if len(keys) != len(set(keys)):
                problems.append(f"station {s}: duplicated forecasts in the history")
            ids = {h["id"] for h in hist}
            missing = [i for i, k in issued.items() if k[0] == s and i not in ids]
            if missing:
                problems.append(f"station {s}: {len(missing)} issued forecasts missing from the history")
    alive = proc.poll() is None

    print(f"\nwall {wall:.1f} s, {len(plan) / wall:.0f} requests/s; server alive at the end: {alive}")
    print(f"cached forecast  {_pct(lat['cached'])}")
    print(f"fresh forecast   {_pct(lat['fresh'])}")
    print(f"post             {_pct(lat['post'])}")
    print(f"errors: {len(errors)}; lost/duplicated-row problems: {len(problems)}")
    for item, err in errors[:5]:
        print(f"  error {item}: {err}")
    for p in problems[:10]:
        print(f"  {p}")
    ok = not errors and not problems and alive
    print("RESULT:", "PASS" if ok else "FAIL")
    return 0 if ok else 1


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default=None, help="checkpoint (default: train a tiny one on synthetic basins)")
    p.add_argument("--data_dir", default=None, help="data folder of the stations (needed with --model)")
    p.add_argument("--workers", type=int, default=None, help="the server's --workers (default: its own default)")
    p.add_argument("--requests", type=int, default=2000, help="requests in all (default 2000)")
    p.add_argument("--concurrency", type=int, default=16, help="requests in flight (default 16)")
    p.add_argument("--post_every", type=int, default=20, help="one post per this many requests (default 20)")
    p.add_argument("--issue_days", type=int, default=7,
                   help="issue days per station: its last this many days with observed flow (default 7)")
    p.add_argument("--time_limit", type=float, default=600, help="stop sending after this many seconds")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if not 1 <= args.requests <= 100_000 or not 1 <= args.concurrency <= 256:
        p.error("--requests must be in 1..100000 and --concurrency in 1..256")
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
