"""Logging and progress: module loggers reach a run's log file, bars only on a terminal, the epoch-0 line."""

from __future__ import annotations

import importlib
import io
import logging
import pkgutil
import shutil

import pandas as pd
import pytest
import yaml

import sca2lstm
from sca2lstm.logs import progress_bar

from conftest import TINY_MODEL, TINY_PERIODS, TINY_TRAINING


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_draws_only_on_a_terminal_and_when_enabled():
    tty, pipe, off = _Terminal(), io.StringIO(), _Terminal()
    for stream, enabled in ((tty, True), (pipe, True), (off, False)):
        for _ in progress_bar(range(50), enabled, file=stream, mininterval=0):
            pass
    assert "50/50" in tty.getvalue()
    assert pipe.getvalue() == "" and off.getvalue() == ""


def test_every_module_logs_under_the_package_logger():
    """getLogger(__name__) everywhere: each module's logger is a child of "sca2lstm", whose handlers
    (console, the run's log file) receive its records."""
    names = {}
    for info in pkgutil.walk_packages(sca2lstm.__path__, "sca2lstm."):
        if info.name.endswith("__main__"):  # runs the command line when imported
            continue
        module = importlib.import_module(info.name)
        if isinstance(getattr(module, "log", None), logging.Logger):
            names[info.name] = module.log.name
    assert {"sca2lstm.data.dataset", "sca2lstm.data.reader", "sca2lstm.training.trainer"} <= set(names)
    assert all(name == module for module, name in names.items()), names


@pytest.mark.slow
def test_pretrain_log_file_gets_data_warnings_no_bars_and_a_dash_for_epoch_0(tiny_data_dir, tmp_path, capsys):
    from sca2lstm.cli.train import main

    data = tmp_path / "camels"
    shutil.copytree(tiny_data_dir, data)
    csv = next((data / "timeseries").glob("*32006*.csv"))
    df = pd.read_csv(csv)
    df.loc[100, "precipitation"] = -5.0                  # physically impossible: the reader warns
    df.to_csv(csv, index=False)
    conf = tmp_path / "tiny.yaml"
    conf.write_text(yaml.safe_dump({"data": {"data_dir": str(data), **TINY_PERIODS},
                                    "training": TINY_TRAINING, "model": TINY_MODEL}))
    out = tmp_path / "model_output" / "sca2lstm.pth"
    # no --quiet: the bars are asked for, but pytest's captured stderr is not a terminal
    rc = main(["--config", str(conf), "--epochs", "1", "--output", str(out), "--basins", "32006", "10002"])
    assert rc == 0
    log = (out.with_name("sca2lstm_run") / "train.log").read_text()
    assert "WARNING basin 32006: 1 physically impossible values set to missing (precipitation: 1)" in log
    epoch0 = next(ln for ln in log.splitlines() if " epoch   0/1" in ln)
    assert "train -  val" in epoch0 and "nan" not in epoch0
    epoch1 = next(ln for ln in log.splitlines() if " epoch   1/1" in ln)
    assert "train -" not in epoch1
    captured = capsys.readouterr()
    assert "\r" not in log and "\r" not in captured.err and "batch/s" not in captured.err


@pytest.mark.slow
def test_finetune_log_file_begins_with_what_was_said_before_the_run_folder_existed(pretrained_ckpt, tiny_data_dir,
                                                                                   tmp_path):
    """The data warnings and the train/validation split (here a --fine_tune_ratio that data.val_start overrides)
    are said before the run's folder is made: finetune.log holds them too, not only the console."""
    from sca2lstm.cli.finetune import main

    data = tmp_path / "camels"
    shutil.copytree(tiny_data_dir, data)
    csv = next((data / "timeseries").glob("*32006*.csv"))
    df = pd.read_csv(csv)
    # physically impossible: the reader warns (another day than the pretraining test's, so no cached read of it)
    df.loc[150, "precipitation"] = -3.0
    df.to_csv(csv, index=False)
    ft = tmp_path / "ft"
    rc = main(["--target_basin", "32006", "--pretrained_model", str(pretrained_ckpt), "--data_dir", str(data),
               "--epochs", "1", "--fine_tune_ratio", "0.5", "--output_dir", str(ft)])
    assert rc == 0
    (run,) = (ft / "basin_32006").iterdir()
    log = (run / "finetune.log").read_text(encoding="utf-8")
    assert "WARNING basin 32006: 1 physically impossible values set to missing (precipitation: 1)" in log
    split = next(ln for ln in log.splitlines() if "basin 32006: validation from" in ln)
    assert "INFO" in split and "ratio 0.5" in split, split
    assert log.index("basin 32006: validation from") < log.index(" epoch   0/1")


@pytest.mark.parametrize("quiet", [False, True])
def test_a_record_for_the_log_file_only_reaches_the_file_not_the_console(tmp_path, capsys, quiet):
    """An interruption's resume hint is the command line's closing stderr line; logged for the run's log file, it
    must not reach the console too (it was shown twice: on stdout, then on stderr)."""
    from sca2lstm.logs import FILE_ONLY, add_log_file, logging_for_run, remove_handler

    log = logging.getLogger("sca2lstm.training.trainer")
    with logging_for_run(quiet=quiet):   # a command's console handlers, off again after it
        handler = add_log_file(tmp_path / "train.log")
        try:
            log.info("Interrupted: the state is saved", extra=FILE_ONLY)
            log.warning("a warning still shows")
        finally:
            remove_handler(handler)
    out = capsys.readouterr()
    assert "Interrupted" not in out.out + out.err and "a warning still shows" in out.out + out.err
    assert "Interrupted: the state is saved" in (tmp_path / "train.log").read_text(encoding="utf-8")


def test_a_closed_console_inside_the_services_event_loop_stops_the_console_lines_not_the_request():
    """A command ends on a closed stdout (exit 141); the service, whose requests log from its event loop, must go on
    serving: the error raised there would have answered every request that logs with a 500."""
    import asyncio
    import logging
    import sys

    from sca2lstm.logs import ROOT, logging_for_run

    class ClosedPipe:
        writes = 0

        def write(self, text):
            ClosedPipe.writes += 1
            raise BrokenPipeError(32, "Broken pipe")

        def flush(self):
            pass

    real = sys.stdout
    sys.stdout = ClosedPipe()
    try:
        with logging_for_run():

            async def request():
                logging.getLogger(ROOT + ".serve").info("station 32006: forecast")   # must not raise here
                logging.getLogger(ROOT + ".serve").info("station 32007: forecast")
                return "answered"

            assert asyncio.run(request()) == "answered"
            assert ClosedPipe.writes == 1          # the console handler left after the first failed line
    finally:
        sys.stdout = real


def _damaged_dataset(folder, day: int):
    """One synthetic basin (32006) with a physically impossible rainfall on ``day``: reading it logs a warning."""
    from sca2lstm.data.synthetic import generate_synthetic

    generate_synthetic(folder, n_basins=1, seed=3, end="1972-12-31")
    csv = next((folder / "timeseries").glob("*32006*.csv"))
    df = pd.read_csv(csv)
    df.loc[day, "precipitation"] = -5.0
    df.to_csv(csv, index=False)
    return folder


def _package_logger_state():
    logger = logging.getLogger("sca2lstm")
    return list(logger.handlers), logger.level, logger.propagate


@pytest.mark.parametrize("outcome", ["ok", "error", "ctrl-c"])
def test_a_command_leaves_the_package_logger_as_it_found_it_however_it_ends(tmp_path, capsys, monkeypatch, outcome):
    """main(argv) attaches its console handlers for the run only: after it (exit 0, a one-line error, Ctrl-C) the
    package logger has the caller's handlers, level and propagation again, and the caller's handler is not closed."""
    from sca2lstm.cli.data import main

    data = _damaged_dataset(tmp_path / "camels", 10)
    if outcome == "error":
        data = tmp_path / "no_such_folder"
    if outcome == "ctrl-c":
        def interrupted(*args, **kwargs):
            raise KeyboardInterrupt
        monkeypatch.setattr("sca2lstm.data.dataset.load_basins", interrupted)
    logger = logging.getLogger("sca2lstm")
    mine = logging.StreamHandler(io.StringIO())
    monkeypatch.setattr(logger, "handlers", [mine])
    monkeypatch.setattr(logger, "propagate", True)
    monkeypatch.setattr(logger, "level", logging.DEBUG)
    before = _package_logger_state()
    rc = main(["check", "--data_dir", str(data)])
    assert rc == {"ok": 0, "error": 1, "ctrl-c": 130}[outcome], capsys.readouterr()
    assert _package_logger_state() == before
    logger.debug("the caller's handler still writes")
    assert "the caller's handler still writes" in mine.stream.getvalue()


def test_a_second_command_in_one_process_writes_nothing_to_the_first_ones_closed_stream(tmp_path, capsys,
                                                                                         monkeypatch):
    """A script that runs main(argv) per station with its output in a file, closed after each: what is logged after
    the first run (a library call, the next run) went to the first run's closed file, printing '--- Logging error
    --- ValueError: I/O operation on closed file' with a traceback on stderr before the next run's own lines."""
    import sys

    from sca2lstm.cli.data import main
    from sca2lstm.config import load_config
    from sca2lstm.data.dataset import load_basins

    first, second = _damaged_dataset(tmp_path / "a", 11), _damaged_dataset(tmp_path / "b", 12)
    own = _damaged_dataset(tmp_path / "c", 13)
    station_out = io.StringIO()
    monkeypatch.setattr(sys, "stdout", station_out)
    assert main(["check", "--data_dir", str(first)]) == 0
    monkeypatch.undo()
    assert station_out.getvalue().count("1 physically impossible values set to missing") == 1
    station_out.close()
    load_basins(own, ["32006"], load_config(), skip_bad=True)   # the script reads a basin itself: a warning
    assert main(["check", "--data_dir", str(second)]) == 0
    out = capsys.readouterr()
    assert "Logging error" not in out.err and "closed file" not in out.err, out.err
    # the second run's warning once, on its own stdout
    assert out.out.count("basin 32006: 1 physically impossible values set to missing") == 1, out.out


@pytest.mark.slow
def test_two_pretraining_runs_in_one_process_keep_their_lines_to_their_own_log_file_and_say_each_once(
        tiny_data_dir, tmp_path, capsys):
    from sca2lstm.cli.train import main

    conf = tmp_path / "tiny.yaml"
    conf.write_text(yaml.safe_dump({"data": {"data_dir": str(tiny_data_dir), **TINY_PERIODS},
                                    "training": TINY_TRAINING, "model": TINY_MODEL}))
    outs = [tmp_path / name / "sca2lstm.pth" for name in ("first", "second")]
    for out, basin in zip(outs, ("32006", "10002")):
        assert main(["--config", str(conf), "--epochs", "0", "--output", str(out), "--basins", basin]) == 0
    first, second = (out.with_name("sca2lstm_run") / "train.log" for out in outs)
    first, second = first.read_text(encoding="utf-8"), second.read_text(encoding="utf-8")
    assert str(outs[0]) in first and str(outs[1]) not in first
    assert str(outs[1]) in second and str(outs[0]) not in second, second
    console = capsys.readouterr().out
    saved = [ln for ln in console.splitlines() if str(outs[1]) in ln]
    assert saved and len(saved) == len(set(saved)), console


def test_reading_basins_shows_a_bar_on_a_terminal_only_where_files_are_read_not_cached(tmp_path, monkeypatch):
    """The first read of many basins (pretraining, `data check`) takes minutes before any other line: a bar on a
    terminal; nothing in a pipe or log, nothing with progress off, and nothing where every basin comes from the
    cache (a bar would only flash)."""
    import sys

    from sca2lstm.config import load_config
    from sca2lstm.data.dataset import load_basins
    from sca2lstm.data.synthetic import generate_synthetic

    cfg = load_config()

    def written(stream, seed, progress=True):
        """What reading two basins writes to ``stream`` as stderr: first a folder not read yet, then again."""
        data = tmp_path / f"camels_{seed}"
        if not data.exists():
            generate_synthetic(data, n_basins=2, seed=seed, end="1972-12-31")
        monkeypatch.setattr(sys, "stderr", stream)
        load_basins(data, ["32006", "10002"], cfg, progress=progress)
        monkeypatch.undo()
        return stream.getvalue()

    assert written(io.StringIO(), seed=5) == ""                 # a pipe: the files are read, without a bar
    assert written(_Terminal(), seed=6, progress=False) == ""
    cold = written(_Terminal(), seed=7)
    assert "reading basins" in cold and "/2 " in cold, cold
    assert written(_Terminal(), seed=7) == ""                   # now cached


def test_data_check_shows_its_bar_on_a_terminal_not_in_a_pipe(tmp_path, monkeypatch, capsys):
    import sys

    from sca2lstm.cli.data import main

    first, second = _damaged_dataset(tmp_path / "a", 20), _damaged_dataset(tmp_path / "b", 21)
    assert main(["check", "--data_dir", str(first)]) == 0
    assert "reading basins" not in capsys.readouterr().err
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    assert main(["check", "--data_dir", str(second)]) == 0
    monkeypatch.undo()
    assert "reading basins" in terminal.getvalue() and "/1 " in terminal.getvalue()


def test_a_line_logged_while_a_bar_is_drawn_takes_the_bar_off_its_line(monkeypatch):
    """A data warning while basins are read went on the bar's line, after the bar ('... 0/3 [00:00<?]basin 10002:
    ...'): the bar is taken off for the line and drawn again after it."""
    import sys

    from sca2lstm.logs import logging_for_run, progress_bar

    terminal = _Terminal()
    monkeypatch.setattr(sys, "stdout", terminal)   # one terminal: the lines on stdout, the bar on stderr
    monkeypatch.setattr(sys, "stderr", terminal)
    with logging_for_run():
        for i in progress_bar(range(3), True, desc="reading basins", mininterval=0):
            if i == 1:
                logging.getLogger("sca2lstm.data.reader").warning("basin 10002: 1 physically impossible value")
    before, line, after = terminal.getvalue().partition("basin 10002: 1 physically impossible value")
    assert line and "reading basins" in before and before.endswith("\r"), repr(before[-40:])
    assert after.startswith("\n") and "reading basins" in after, repr(after[:40])
