"""The service as a real server process (subprocesses: a kill needs one).

- Durability: SIGKILL the server during a burst of posts, restart it, and find every acknowledged
  write (uvicorn on the app of serve_helpers, with the tiny trained model).
- The load script on `sca2lstm serve` with a trained model, scaled down: no error, nothing lost or
  duplicated.
- Stopping: SIGTERM stops the service and its model workers; after a SIGKILL the workers exit by themselves.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time

import httpx
import pytest
from conftest import REPO

TOKEN = "kill-test-token"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(model, data_dir, db, port) -> subprocess.Popen:
    env = dict(os.environ, SERVE_MODEL=str(model), SERVE_DATA_DIR=str(data_dir), SERVE_DB=str(db), SCA2LSTM_TOKEN=TOKEN,
               PYTHONPATH=os.pathsep.join([str(REPO), str(REPO / "tests")]))
    proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "serve_helpers:app_from_env", "--factory",
                             "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
                            cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return _answering(proc, port, 60, "server")


def _answering(proc: subprocess.Popen, port: int, seconds: float, what: str) -> subprocess.Popen:
    """``proc`` once it answers /health on ``port``; killed, and the test failed, if it exits or is silent."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"{what} exited: {proc.stderr.read().decode()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise AssertionError(f"{what} did not answer /health within {seconds} s")


@pytest.mark.slow
def test_every_acknowledged_post_survives_a_sigkill(pretrained_ckpt, tiny_data_dir, tmp_path):
    db = tmp_path / "serve.sqlite"
    port = _free_port()
    proc = _start(pretrained_ckpt, tiny_data_dir, db, port)
    acked: list[tuple[str, str, float]] = []
    lock = threading.Lock()
    stop = threading.Event()
    base = dt.date(1971, 1, 1)
    url = f"http://127.0.0.1:{port}"

    def writer(w: int) -> None:
        station = ["32006", "10002", "10003"][w % 3]
        with httpx.Client(base_url=url, timeout=5, headers={"Authorization": f"Bearer {TOKEN}"}) as c:
            for i in range(300):  # bounded; the kill ends it sooner
                if stop.is_set():
                    return
                day = (base + dt.timedelta(days=w * 300 + i)).isoformat()
                value = round(w + i / 1000, 3)
                try:
                    r = c.post(f"/stations/{station}/observations",
                               json={"observations": [{"date": day, "discharge": value}]})
                except httpx.HTTPError:
                    return  # the server died with this post in flight: not acknowledged
                if r.status_code == 200:
                    with lock:
                        acked.append((station, day, value))

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 30
    while len(acked) < 200 and time.monotonic() < deadline:
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)  # mid-burst: the writers are still posting
    proc.wait(timeout=10)
    stop.set()
    for t in threads:
        t.join(timeout=10)
    assert len(acked) >= 50, f"only {len(acked)} posts acknowledged before the kill"
    assert len(acked) < 4 * 300, "the burst ended before the kill"

    con = sqlite3.connect(db)
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    con.close()
    proc = _start(pretrained_ckpt, tiny_data_dir, db, port)
    try:
        with httpx.Client(base_url=url, timeout=10) as c:
            for station in ("32006", "10002", "10003"):
                mine = {(d, v) for s, d, v in acked if s == station}
                if not mine:
                    continue
                days = sorted(d for d, _ in mine)
                got = c.get(f"/stations/{station}/observations", params={"start": days[0], "end": days[-1]}).json()
                stored = {(o["date"], o["discharge"]) for o in got["observations"] if o["posted"]}
                missing = mine - stored
                assert not missing, f"{len(missing)} acknowledged posts lost at {station}, e.g. {sorted(missing)[:3]}"
    finally:
        proc.kill()
        proc.wait(timeout=10)


@pytest.mark.slow
def test_load_script_passes_on_the_real_server(pretrained_ckpt, tiny_data_dir):
    r = subprocess.run([sys.executable, str(REPO / "scripts" / "load_test.py"), "--model", str(pretrained_ckpt),
                        "--data_dir", str(tiny_data_dir), "--requests", "200", "--concurrency", "8",
                        "--time_limit", "400"], cwd=REPO, capture_output=True, text=True, timeout=600, check=False)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "errors: 0; lost/duplicated-row problems: 0" in r.stdout and "RESULT: PASS" in r.stdout
    for kind in ("cached forecast", "fresh forecast", "post"):
        assert kind in r.stdout


@pytest.mark.slow
@pytest.mark.parametrize("script", sorted(p.name for p in (REPO / "scripts").glob("*.py")))
def test_each_documented_check_script_starts(script):
    """docs/serve.md tells users to run scripts/load_test.py, browser_check.py and archive_forecast_speed.py:
    each must at least import what it shares with the others and answer --help (browser_check.py once imported
    a helper of load_test.py under a name it no longer had)."""
    r = subprocess.run([sys.executable, str(REPO / "scripts" / script), "--help"], cwd=REPO, capture_output=True,
                       text=True, timeout=120, check=False)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "usage:" in r.stdout


def _children(pid: int) -> list[int]:
    """Processes whose parent is ``pid`` (from /proc)."""
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                        out.append(int(d))
            except (OSError, IndexError, ValueError):
                continue
    return out


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _serve_cli(model, data_dir, db, port) -> subprocess.Popen:
    """`sca2lstm serve` with one model worker on ``port``, once it answers /health."""
    proc = subprocess.Popen([sys.executable, "-m", "sca2lstm", "serve", "--model", str(model), "--data_dir",
                             str(data_dir), "--db", str(db), "--port", str(port), "--workers", "1", "--quiet"],
                            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env=dict(os.environ, PYTHONPATH=str(REPO)))
    return _answering(proc, port, 90, "sca2lstm serve")


@pytest.mark.slow
@pytest.mark.skipif(not os.path.isdir("/proc"), reason="reads the process table from /proc")
def test_sigterm_stops_the_service_and_its_worker_processes(pretrained_ckpt, tiny_data_dir, tmp_path):
    """systemd and docker stop a service with SIGTERM: `sca2lstm serve` must take its model workers with it,
    not leave them running (half a GB each) under init."""
    proc = _serve_cli(pretrained_ckpt, tiny_data_dir, tmp_path / "s.sqlite", _free_port())
    try:
        workers = _children(proc.pid)
        assert workers, "the service started no worker process"
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
        assert not (tmp_path / "s.sqlite.lock").exists()  # released and removed as it stopped
        deadline = time.monotonic() + 20
        while any(_alive(p) for p in workers) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not [p for p in workers if _alive(p)], "worker processes outlived the service"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


@pytest.mark.slow
@pytest.mark.skipif(not os.path.isdir("/proc"), reason="reads the process table from /proc")
def test_a_sigkilled_service_leaves_no_worker_process_behind(pretrained_ckpt, tiny_data_dir, tmp_path):
    """kill -9 (or the OOM killer) runs no shutdown: the model workers notice that their parent is gone and
    exit, instead of living on under init with the models loaded (and, with them, multiprocessing's
    resource tracker, which ends once no worker holds its pipe)."""
    port = _free_port()
    proc = _serve_cli(pretrained_ckpt, tiny_data_dir, tmp_path / "s.sqlite", port)
    children = _children(proc.pid)
    try:
        workers = [p for p in children if "spawn_main" in _cmdline(p)]
        assert workers, f"the service started no worker process: {[_cmdline(p) for p in children]}"
        # a forecast first: the worker has run the model, as in service, not only started
        assert httpx.get(f"http://127.0.0.1:{port}/stations/32006/forecast", timeout=60).status_code == 200
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        deadline = time.monotonic() + 10
        while any(_alive(p) for p in children) and time.monotonic() < deadline:
            time.sleep(0.2)
        left = [_cmdline(p) for p in children if _alive(p)]
        assert not left, f"processes outlived the killed service: {left}"
    finally:
        for p in children:  # never leave them running, whatever the assertion said
            if _alive(p):
                os.kill(p, signal.SIGKILL)
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
