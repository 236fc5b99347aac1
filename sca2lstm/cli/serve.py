"""``sca2lstm serve``: the forecast service (JSON API, web page, SQLite database).

Example: ``SCA2LSTM_TOKEN=secret sca2lstm serve --model model_output/sca2lstm.pth --data_dir data/camels_gb``
then open http://127.0.0.1:8000/ (API documentation at /docs).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
from pathlib import Path

from ..errors import UsageError
from .common import ArgumentParser, non_negative_int, positive_float, run_main

PROG = "sca2lstm serve"
log = logging.getLogger(__name__)


#: command lines that --help ends with (tests parse each)
EXAMPLES = [
        'sca2lstm serve --model ./model_output --data_dir ./stations --db service.sqlite --issue_at 08:00',
]


def build_parser(prog: str = PROG) -> ArgumentParser:
    p = ArgumentParser(prog=prog, examples=EXAMPLES, description="Serve forecasts of a checkpoint over HTTP: JSON API, web page, "
                                              "posted observations kept in an SQLite file.")
    p.add_argument("--model", required=True,
                   help="checkpoint (.pth), or a folder of checkpoints: each station's own fine-tuned model "
                        "(**/best_model_basin_<id>.pth, the newest) where there is one, else the folder's "
                        "pretrained sca2lstm.pth; loaded once with weights_only; a station's model fine-tuned into the "
                        "folder while serving, or a checkpoint in use replaced on disk, is used from then on, without "
                        "a restart")
    p.add_argument("--data_dir", default=None,
                   help="CAMELS-GB folder whose basins are the stations (read; PUT .../levels writes a station's "
                        "meta/<id>.json there; default: $SCA2LSTM_DATA_DIR, else the checkpoint config's data_dir)")
    p.add_argument("--db", default=None, help="SQLite file (default: serve.sqlite beside the model)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument("--token_file", default=None,
                   help="file holding the write token (default: $SCA2LSTM_TOKEN; without one, writes are off)")
    p.add_argument("--workers", type=int, default=None,
                   help="processes that run the model (default: one fewer than the CPU cores, at least 1, at "
                        "most 4: the server's own process keeps a core for cached answers); 0 runs it in a thread "
                        "of the server process")
    p.add_argument("--anonymous_per_minute", type=int, default=120,
                   help="requests a minute one client may make without the token (default 120, at least 60)")
    g = p.add_argument_group("daily issue and alerts")
    g.add_argument("--issue_at", default=None,
                   help="issue every station each day at this local time, HH:MM (e.g. 08:00), storing the forecasts "
                        "and warnings and alerting on changes (default: no daily issue)")
    g.add_argument("--timezone", default=None,
                   help="time zone of --issue_at, e.g. Asia/Shanghai (default: the server's)")
    g.add_argument("--alert_webhook", default=None, help="URL that receives each issue's alerts as JSON (POST)")
    g.add_argument("--alert_email", default=None, help="addresses, comma-separated, that receive the alerts")
    g.add_argument("--smtp", default="localhost:25",
                   help="SMTP server HOST:PORT for --alert_email (default localhost:25; user and password from "
                        "$SCA2LSTM_SMTP_USER and $SCA2LSTM_SMTP_PASSWORD)")
    g.add_argument("--smtp_from", default="sca2lstm@localhost", help="sender address of the alert e-mails")
    g.add_argument("--smtp_starttls", action="store_true", help="upgrade the SMTP connection with STARTTLS")
    # serve.notify.ALERT_LANGUAGES, written out: the service's modules are imported only when it starts
    g.add_argument("--alert_language", choices=("en", "zh"), default="en",
                   help="language of the alert e-mails and of the notes the alerts carry (webhook and e-mail): en "
                        "or zh (Chinese; default en). The page and the API follow each reader's Accept-Language")
    g.add_argument("--weather_base_url", default=None,
                   help="Open-Meteo host the daily issue fetches from for stations whose metadata names the source "
                        "(a self-hosted instance; default: the free API, non-commercial use only, or with a paid "
                        "plan's key in $SCA2LSTM_OPENMETEO_API_KEY the plan's host of each API)")
    g.add_argument("--weather_timeout", type=positive_float, default=20.0,
                   help="seconds one weather request attempt may take in all, connecting and reading the whole "
                        "answer (default 20)")
    g.add_argument("--weather_retries", type=non_negative_int, default=3, help="retries of a failed weather request (default 3)")
    p.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    p.add_argument("--quiet", action="store_true", help="warnings only")
    return p


def read_token(token_file) -> str | None:
    """The write token: ``--token_file``'s first line, else ``$SCA2LSTM_TOKEN``, else None."""
    if token_file:
        path = Path(token_file).expanduser()
        try:
            text = path.read_text(encoding="utf-8").strip()
        except OSError as e:
            raise UsageError(f"--token_file {path}: cannot read it ({e.strerror})") from None
        if not text:
            raise UsageError(f"--token_file {path} is empty; expected the write token on its first line")
        if os.name == "posix" and path.stat().st_mode & 0o077:
            log.warning("--token_file %s can be read by other users of this machine (mode %o); chmod 600 it",
                        path, path.stat().st_mode & 0o777)
        return _ascii_token(text.splitlines()[0].strip(), f"--token_file {path}")
    token = os.environ.get("SCA2LSTM_TOKEN") or None
    return _ascii_token(token, "$SCA2LSTM_TOKEN") if token else None


def _ascii_token(token: str, where: str) -> str:
    """``token``, refused in one line where a client could never send it: an HTTP header carries latin-1 text, so
    a token with other letters (``tök``, ``令牌``) or spaces and control characters would never match, and every
    write would be answered 'wrong token'."""
    bad = next((c for c in token if not ("!" <= c <= "~")), None)
    if bad is not None:
        raise UsageError(f"{where}: the write token holds {bad!r}; use letters, digits and ASCII punctuation only "
                         "(e.g. python -c 'import secrets; print(secrets.token_urlsafe(32))')")
    return token


def check_db(db: Path):
    """The database file the service will use, checked before any model is loaded: a folder, a file that is
    not SQLite, or a place it cannot be written is one line; a new file is said to be new."""
    import sqlite3

    if db.is_dir():
        raise UsageError(f"--db {db} is a folder; expected a database file (e.g. {db / 'serve.sqlite'})")
    if db.parent.exists() and not db.parent.is_dir():
        raise UsageError(f"--db {db}: {db.parent} is a file, not a folder")
    if not db.exists():
        log.info("database %s does not exist yet: a new, empty one is made (no posted days, no issue history)", db)
        try:
            db.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise UsageError(f"--db {db}: cannot make its folder ({e.strerror})") from None
        return
    try:
        con = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)  # read-only; the path percent-encoded
        try:
            con.execute("PRAGMA schema_version").fetchone()
        finally:
            con.close()
    except sqlite3.DatabaseError as e:
        raise UsageError(f"--db {db} is not a database this service can read ({e}); give another file") from None


def lock_db(db: Path):
    """An exclusive lock on ``<db>.lock`` held while this process serves (one server per database: a second
    one would serve stale data versions and race the daily issue); a one-line UsageError where it is taken.
    Returns the open lock file (:func:`unlock_db` releases it), or None where the system has no flock."""
    try:
        import fcntl
    except ImportError:  # not on POSIX: the docs' rule, unchecked
        return None
    lock = db.with_name(db.name + ".lock")
    try:
        fh = open(lock, "a+")  # noqa: SIM115 (held open while serving)
    except OSError as e:  # a folder it cannot write in: said before the models load, as for the database
        raise UsageError(f"--db {db}: cannot write its lock file {lock} ({e.strerror}); give a --db in a folder "
                         "this user can write") from None
    try:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        fh.close()
        raise UsageError(f"--db {db} is in use by another sca2lstm serve (lock {fh.name}); one server per database: "
                         "stop the other, or give this one another --db") from None
    # The server that held it removes the file as it ends (unlock_db): a file opened before that is no longer the
    # lock at this name, and another server may hold the one there now: lock that one instead.
    try:
        current = os.path.samestat(os.fstat(fh.fileno()), os.stat(lock))
    except FileNotFoundError:
        current = False
    if not current:
        fh.close()
        return lock_db(db)
    return fh


def unlock_db(fh) -> None:
    """Remove and release the lock of :func:`lock_db` (None: nothing), so that a server that stopped, or failed
    to start after taking it, leaves no lock file behind."""
    if fh is None:
        return
    with contextlib.suppress(OSError):
        os.unlink(fh.name)  # while still held: a server starting now locks a new file (lock_db checks which)
    fh.close()


def check_port(host: str, port: int) -> None:
    """A one-line UsageError where ``host:port`` is taken, before the models are loaded."""
    import errno
    import socket

    try:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((host, port))
    except OSError as e:
        # a name that does not resolve, or an address this machine does not have: the host is wrong, not the port
        if isinstance(e, socket.gaierror) or e.errno == errno.EADDRNOTAVAIL:
            raise UsageError(f"--host {host!r} is not an address of this machine ({e.strerror}); give one it has, "
                             "e.g. 127.0.0.1 (this machine only) or 0.0.0.0 (every network)") from None
        raise UsageError(f"--port {port}: {host}:{port} cannot be served ({e.strerror}); another service on it? "
                         "give another --port") from None


def _stop_on_sigterm(signum, frame):
    raise SystemExit(128 + signum)


def daily_settings(args):
    """The daily issue of the flags (one-line UsageError on a bad value)."""
    from ..serve.daily import Daily, parse_issue_at, parse_timezone
    from ..serve.notify import Notifier
    from ..serve.weather import FetchSettings

    at = parse_issue_at(args.issue_at) if args.issue_at else None
    tz = parse_timezone(args.timezone)
    if args.alert_webhook and not args.alert_webhook.startswith(("http://", "https://")):
        raise UsageError(f"--alert_webhook {args.alert_webhook!r}: expected an http:// or https:// URL")
    emails = [e.strip() for e in (args.alert_email or "").split(",") if e.strip()]
    bad = [e for e in emails if "@" not in e]
    if bad:
        raise UsageError(f"--alert_email {bad[0]!r} is not an e-mail address")
    host, sep, port = args.smtp.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise UsageError(f"--smtp {args.smtp!r}: expected HOST:PORT, e.g. smtp.example.org:587")
    notifier = Notifier.from_env(webhook=args.alert_webhook, email_to=emails, smtp_host=host, smtp_port=int(port),
                                 smtp_from=args.smtp_from, smtp_starttls=args.smtp_starttls,
                                 language=args.alert_language)
    if args.weather_base_url and not args.weather_base_url.startswith(("http://", "https://")):
        raise UsageError(f"--weather_base_url {args.weather_base_url!r}: expected an http:// or https:// URL")
    weather = FetchSettings(base_url=args.weather_base_url, api_key=os.environ.get("SCA2LSTM_OPENMETEO_API_KEY") or None,
                            timeout=args.weather_timeout, retries=args.weather_retries)
    return Daily(at=at, tz=tz, notifier=notifier, weather=weather)


def _body(args) -> int:
    from ..serve.app import MIN_ANONYMOUS_PER_MINUTE

    if not 0 < args.port < 65536:
        raise UsageError(f"--port {args.port}: expected 1..65535")
    if args.anonymous_per_minute < MIN_ANONYMOUS_PER_MINUTE:
        raise UsageError(f"--anonymous_per_minute {args.anonymous_per_minute}: expected at least "
                         f"{MIN_ANONYMOUS_PER_MINUTE}")
    workers = max(1, min(4, (os.cpu_count() or 2) - 1)) if args.workers is None else args.workers
    if not 0 <= workers <= 64:
        raise UsageError(f"--workers {args.workers}: expected 0..64")
    token = read_token(args.token_file)
    daily = daily_settings(args)
    model_path = Path(args.model).expanduser()
    if not model_path.exists():
        raise UsageError(f"--model {model_path}: no such checkpoint file or folder")
    # What can be wrong with the place to serve from is said before the models load (seconds to minutes)
    db = Path(args.db).expanduser() if args.db else (model_path if model_path.is_dir()
                                                    else model_path.parent) / "serve.sqlite"
    check_db(db)
    check_port(args.host, args.port)
    lock = lock_db(db)
    try:
        return _serve(args, model_path, db, workers, token, daily)
    finally:
        unlock_db(lock)  # also where the start failed after taking it (a bad --data_dir, the port taken meanwhile)


def _serve(args, model_path: Path, db: Path, workers: int, token: str | None, daily) -> int:
    """Load the models and serve until stopped (the flags are checked, and the database's lock is held)."""
    import uvicorn

    from ..checkpoint import load_model
    from ..data.reader import list_basins
    from ..evaluation.context import data_folder
    from ..evaluation.live import LiveForecaster, station_models
    from ..serve.app import create_app

    default, _ = station_models(model_path, [])
    bundle = load_model(default.path, "cpu")
    data_dir, _ = data_folder(bundle, args.data_dir)
    stations = list_basins(data_dir)
    default, own = station_models(model_path, stations)
    forecaster = LiveForecaster(default, own, data_dir, workers=workers,
                                folder=model_path if model_path.is_dir() else None, stations=stations)
    # SIGTERM while the workers start (before uvicorn takes the signals over) must still stop them
    previous = signal.signal(signal.SIGTERM, _stop_on_sigterm)
    try:
        forecaster.warm_up()
        # the workers stop with the app: on SIGTERM (systemd, docker) uvicorn ends the process after it
        app = create_app(data_dir, db, forecaster, token=token, anonymous_per_minute=args.anonymous_per_minute,
                         daily=daily, on_shutdown=forecaster.close)
        log.info("model %s (%d station(s) with their own fine-tuned model), stations from %s, database %s, "
                 "%d worker process(es)", model_path, len(forecaster.own), data_dir, db, workers)
        if token is None:
            log.warning("writes are off: no write token ($SCA2LSTM_TOKEN or --token_file); posts get 403")
        else:
            log.info("writes are on (token from %s)", "--token_file" if args.token_file else "$SCA2LSTM_TOKEN")
        if daily.at is not None:
            log.info("daily issue at %s (%s); alerts to %s", daily.at.strftime("%H:%M"), daily.tz or "local time",
                     ", ".join(filter(None, [daily.notifier.webhook and "the webhook",
                                             daily.notifier.email_to and "e-mail"])) or "nobody (no channel set)")
        log.info("serving on http://%s:%d/ (API documentation at /docs)", args.host, args.port)
        if args.host not in ("127.0.0.1", "localhost", "::1"):
            log.warning("listening on %s: other machines can reach the service; put it behind TLS before "
                        "posting with a token over a network", args.host)
        uvicorn.run(app, host=args.host, port=args.port, log_level="warning" if args.quiet else "info",
                    access_log=False)
    finally:
        forecaster.close()
        signal.signal(signal.SIGTERM, previous)
    return 0


def main(argv=None, prog: str = PROG) -> int:
    return run_main(prog, _body, build_parser(prog), argv)
