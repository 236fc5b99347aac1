"""The ``sca2lstm`` console script: one entry point with a subcommand per job.

Each subcommand is a module with ``main(argv) -> int``; the guide's root scripts call the same
functions (``sca2lstm.py`` -> train, ``fine_train.py`` -> finetune, ``predict.py`` -> predict).
"""

from __future__ import annotations

import importlib
import sys

SUBCOMMANDS = {
    "train": ("sca2lstm.cli.train", "pretrain the model on many basins"),
    "finetune": ("sca2lstm.cli.finetune", "fine-tune a pretrained model to one or more basins"),
    "predict": ("sca2lstm.cli.predict", "hindcast a basin with a checkpoint; metrics and figures"),
    "forecast": ("sca2lstm.cli.forecast", "issue-time forecast of the next days, with quantiles"),
    "calibrate": ("sca2lstm.cli.calibrate", "fit a checkpoint's forecast calibration (blend, spread, warnings) on validation"),
    "verify": ("sca2lstm.cli.verify", "score a reforecast table per lead and warning level, beside persistence"),
    "data": ("sca2lstm.cli.data", "data tools: 'synth' writes the built-in synthetic basins"),
    "demo": ("sca2lstm.cli.demo", "the whole story offline: synth, pretrain, fine-tune, predict"),
    "report": ("sca2lstm.cli.report", "rebuild report.html of a run folder"),
    "station": ("sca2lstm.cli.station", "'station import' brings a gauge's own file (CSV/Excel, daily/hourly, flow/stage) into a data folder"),
    "serve": ("sca2lstm.cli.serve", "forecast service: JSON API, web page, posted observations (SQLite)"),
    "tune": ("sca2lstm.cli.tune", "hyper-parameter search (Optuna: sca, tpe, random, pso) on validation"),
    "weather": ("sca2lstm.cli.weather", "'weather fetch' a station's forecast, 'weather archive' past forecasts"),
}


def _usage() -> str:
    lines = ["usage: sca2lstm <command> [options]", "", "commands:"]
    lines += [f"  {name:<9} {desc}" for name, (_, desc) in SUBCOMMANDS.items()]
    lines += ["", "'sca2lstm <command> --help' lists a command's options; 'sca2lstm --version' the installed version."]
    return "\n".join(lines)


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        # asked for: the list on stdout, exit 0; no command at all is a usage error: stderr, exit 2
        print(_usage(), file=sys.stdout if argv else sys.stderr)
        return 0 if argv else 2
    if argv[0] in ("-V", "--version"):
        # what a bug report asks for first; the package imports torch lazily, so this stays instant
        from .. import __version__
        print(f"sca2lstm {__version__}")
        return 0
    cmd, rest = argv[0], argv[1:]
    if cmd not in SUBCOMMANDS:
        import difflib
        near = difflib.get_close_matches(cmd, SUBCOMMANDS, n=1)
        hint = f" (did you mean {near[0]}?)" if near else ""
        sys.stderr.write(f"sca2lstm: error: unknown command {cmd!r}{hint}; choose from {', '.join(SUBCOMMANDS)}\n")
        return 2
    return launch(cmd, rest)


def launch(cmd: str, argv=None, prog: str | None = None) -> int:
    """Import the subcommand ``cmd`` and run its ``main(argv, prog)``.

    The import takes about a second (pydantic, pandas); a Ctrl-C then ends the command the way it does
    once the command runs (one line, exit 130) instead of with a traceback of the import machinery. The
    guide's root scripts (``sca2lstm.py``, ``fine_train.py``, ``predict.py``) start through here too.

    ``prog`` is the name that usage, help and errors show: the root script's name when started as one
    (``python predict.py``), else (None) ``sca2lstm <cmd>``, the way the user called it, so that the usage
    line is a command the user can run.
    """
    try:
        module = importlib.import_module(SUBCOMMANDS[cmd][0])
    except KeyboardInterrupt:
        sys.stderr.write(f"{prog or 'sca2lstm'}: interrupted\n")
        return 130
    return module.main(argv, prog=prog or f"sca2lstm {cmd}")


if __name__ == "__main__":
    sys.exit(main())
