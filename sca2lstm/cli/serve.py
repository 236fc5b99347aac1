"""``sca2lstm serve``: the forecast service (JSON API, web page, SQLite database).

Example: ``SCA2LSTM_TOKEN=secret sca2lstm serve --model model_output/sca2lstm.pth --data_dir data/camels_gb``
then open http://127.0.0.1:8000/ (API documentation at /docs).
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

from ..errors import UsageError
from .common import ArgumentParser, run_main

PROG = "sca2lstm serve"
log = logging.getLogger(__name__)


def build_parser() -> ArgumentParser:
    p = ArgumentParser(prog=PROG, description="Serve forecasts of a checkpoint over HTTP: JSON API, web page, "
                                              "posted observations kept in an SQLite file.")
    p.add_argument("--model", required=True, help="checkpoint (.pth), loaded once with weights_only")
    p.add_argument("--data_dir", default=None,
                   help="CAMELS-GB folder whose basins are the stations (read only; default: "
                        "$SCA2LSTM_DATA_DIR, else the checkpoint config's data_dir)")
    p.add_argument("--db", default=None, help="SQLite file (default: serve.sqlite beside the model)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument("--token_file", default=None,
                   help="file holding the write token (default: $SCA2LSTM_TOKEN; without one, writes are off)")
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
        return text.splitlines()[0].strip()
    return os.environ.get("SCA2LSTM_TOKEN") or None


def file_sha256(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _body(args) -> int:
    import uvicorn

    from ..data.dataset import recorded_data, resolve_data_dir
    from ..serve.app import create_app, model_forecaster
    from ..checkpoint import load_model

    if not 0 < args.port < 65536:
        raise UsageError(f"--port {args.port}: expected 1..65535")
    token = read_token(args.token_file)
    model_path = Path(args.model).expanduser()
    bundle = load_model(model_path, "cpu")
    max_leads = int(getattr(bundle[1].training, "forecast_leads", 0) or 0)
    if max_leads < 1:
        raise UsageError(f"--model {model_path} is a hindcast-only model (training.forecast_leads 0); the service "
                         "needs one trained to forecast from an issue date (training.forecast_leads >= 1)")
    data_dir, _ = resolve_data_dir(args.data_dir, bundle[1], recorded=recorded_data(bundle[3]))
    db = Path(args.db).expanduser() if args.db else model_path.parent / "serve.sqlite"
    app = create_app(data_dir, db, model_forecaster(bundle, data_dir), token=token, model_path=str(model_path),
                     model_sha256=file_sha256(model_path), max_leads=max_leads)
    log.info("model %s, stations from %s, database %s", model_path, data_dir, db)
    if token is None:
        log.warning("writes are off: no write token ($SCA2LSTM_TOKEN or --token_file); posts get 403")
    else:
        log.info("writes are on (token from %s)", "--token_file" if args.token_file else "$SCA2LSTM_TOKEN")
    log.info("serving on http://%s:%d/ (API documentation at /docs)", args.host, args.port)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        log.warning("listening on %s: other machines can reach the service; put it behind TLS before "
                    "posting with a token over a network", args.host)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning" if args.quiet else "info",
                access_log=False)
    return 0


def main(argv=None) -> int:
    return run_main(PROG, _body, build_parser(), argv)
