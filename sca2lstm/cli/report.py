"""``sca2lstm report RUN_DIR``: rebuild the self-contained ``report.html`` of a run folder."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from ..errors import DataError
from ..words import LANGUAGES
from .common import ArgumentParser, run_main

PROG = "sca2lstm report"
log = logging.getLogger(__name__)


#: command lines that --help ends with (tests parse each)
EXAMPLES = [
        'sca2lstm report ./model_output/sca2lstm_run',
]


def build_parser(prog: str = PROG) -> ArgumentParser:
    """The command's argument parser."""
    p = ArgumentParser(prog=prog, examples=EXAMPLES, description="Rebuild RUN_DIR/report.html from the files of a run "
                                              "folder (config, history, metrics, tune trials, figures).")
    p.add_argument("run_dir", metavar="RUN_DIR", help="the run folder (e.g. runs/<name>)")
    p.add_argument("--title", default=None, help="page title (default: 'sca2lstm run: <folder>')")
    p.add_argument("--language", choices=list(LANGUAGES), default=LANGUAGES[0],
                   help="language of a forecast folder's forecast section, as 'sca2lstm forecast --language' "
                        "wrote it: en (default) or zh")
    p.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    p.add_argument("--quiet", action="store_true", help="print nothing on success")
    return p


def _body(args: argparse.Namespace) -> int:
    from ..evaluation.report import build_report

    run_dir = Path(args.run_dir)
    if not run_dir.is_dir():
        if run_dir.exists():
            raise DataError(f"run folder {run_dir} is not a folder")
        raise DataError(f"run folder {run_dir} does not exist")
    if not any(f.suffix in (".png", ".csv", ".json", ".yaml") for f in run_dir.rglob("*") if f.is_file()):
        raise DataError(f"run folder {run_dir} holds nothing to report (no figures, tables or config); expected the "
                        "folder of a training, fine-tuning, prediction or forecast run")
    path = build_report(run_dir, title=args.title, language=args.language)
    log.info(f"wrote {path}")
    return 0


def main(argv=None, prog: str = PROG) -> int:
    """Entry point: ``sca2lstm report RUN_DIR [--title TITLE]``; returns the exit code."""
    return run_main(prog, _body, build_parser(prog), argv)
