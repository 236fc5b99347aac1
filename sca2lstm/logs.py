"""Where the package's log records go: the console, and a run's log file.

Every module logs to ``logging.getLogger(__name__)``, a child of the ``sca2lstm`` logger, so the
handlers set here on ``sca2lstm`` receive the records of all of them (data, models, training,
evaluation) without the library layers knowing about the command line.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import threading

ROOT = "sca2lstm"

#: A run's outcome (the model saved and where, which model was kept): between INFO and WARNING, so that
#: ``--quiet``, which silences the progress lines, still says what the run produced.
RESULT = 25
logging.addLevelName(RESULT, "RESULT")

#: ``extra`` of a record meant for the run's log file only: one the command line also prints as its closing
#: stderr line (an interruption's resume hint), which the console would otherwise show twice.
FILE_ONLY = {"file_only": True}


def _not_file_only(record: logging.LogRecord) -> bool:
    return not getattr(record, "file_only", False)


class _ConsoleHandler(logging.StreamHandler):
    """A console stream handler that lets a closed pipe end the command (``sca2lstm tune ... | head -1``).

    logging reports a failed write as '--- Logging error ---' with a traceback on stderr and goes on, once per
    line; a BrokenPipeError instead reaches the command's error handling, which ends it quietly (exit 141).
    """

    def emit(self, record: logging.LogRecord) -> None:
        tqdm = sys.modules.get("tqdm")   # no bar can be drawn before tqdm is imported
        if tqdm is None:
            return super().emit(record)
        # A line written while a bar is drawn on the same terminal (a data warning while basins are read) went on
        # the bar's line, after it; tqdm takes the bar off for the line and draws it again below it.
        with tqdm.tqdm.external_write_mode(file=self.stream):
            super().emit(record)

    def handleError(self, record: logging.LogRecord) -> None:
        error = sys.exc_info()[1]
        if isinstance(error, BrokenPipeError):
            # Nothing more to a reader that is gone. A command ends; the service (its event loop, its worker
            # threads) goes on serving: raised inside a request, the error would answer every request that logs 500
            logging.getLogger(ROOT).removeHandler(self)
            if threading.current_thread() is threading.main_thread() and not _in_event_loop():
                raise error
            return
        super().handleError(record)


def _in_event_loop() -> bool:
    """Whether this thread runs an asyncio event loop (the service's)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def setup_logging(quiet: bool = False, logfile=None) -> None:
    """Console logging (and optionally a file). Idempotent: handlers are replaced, not stacked.

    Progress and results go to stdout. Quiet: only the :data:`RESULT` lines on stdout, warnings and
    errors on stderr.
    """
    root = logging.getLogger(ROOT)
    for h in list(root.handlers):
        root.removeHandler(h)
        h.close()
    root.setLevel(logging.INFO)
    root.propagate = False
    h = _ConsoleHandler(sys.stdout)
    h.setFormatter(logging.Formatter("%(message)s"))
    h.setLevel(RESULT if quiet else logging.INFO)
    h.addFilter(_not_file_only)
    if quiet:
        h.addFilter(lambda record: record.levelno == RESULT)
        err = _ConsoleHandler(sys.stderr)
        err.setFormatter(logging.Formatter("%(message)s"))
        err.setLevel(logging.WARNING)
        err.addFilter(_not_file_only)
        root.addHandler(err)
    root.addHandler(h)
    if logfile is not None:
        fh = logging.FileHandler(logfile, encoding="utf-8")
        fh.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        root.addHandler(fh)


@contextlib.contextmanager
def logging_for_run(quiet: bool = False):
    """The package's console handlers (:func:`setup_logging`) for one command run, taken off when it ends.

    However the run ends (its result, an error, Ctrl-C), the ``sca2lstm`` logger is left as the run found it:
    the handlers the run attached (the console's, and any log file it failed to detach) are removed and closed,
    the caller's own handlers, detached during the run, are attached again, and its level and propagation are
    restored. ``main(argv)`` called again in the same process (a notebook, a script looping over stations, a
    test) thus never writes to a stream or log file of an earlier call, which may be closed by then ('--- Logging
    error --- ValueError: I/O operation on closed file'), and never twice to one stream.
    """
    root = logging.getLogger(ROOT)
    callers, level, propagate = list(root.handlers), root.level, root.propagate
    for h in callers:  # detached, not closed: they are the caller's
        root.removeHandler(h)
    try:
        setup_logging(quiet)
        yield
    finally:
        for h in list(root.handlers):
            root.removeHandler(h)
            if h not in callers:
                h.close()
        for h in callers:
            root.addHandler(h)
        root.setLevel(level)
        root.propagate = propagate


def progress_bar(iterable=None, enabled: bool = True, file=None, **kwargs):
    """A tqdm bar over ``iterable`` that draws only when ``enabled`` and ``file`` (default stderr) is a terminal:
    tqdm's ``disable=None``. Redirected to a file or a pipe (a log, CI, a job scheduler), a bar would leave a
    carriage-return update per step in it, thousands per pretraining run."""
    from tqdm import tqdm

    return tqdm(iterable, disable=None if enabled else True, file=file, **kwargs)


class HeldRecords(logging.Handler):
    """The package's log records kept in memory until the run's log file exists (:func:`add_log_file`)."""

    def __init__(self):
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def hold_records() -> HeldRecords:
    """Start keeping the package's log records (the console still shows them); stop with :func:`release`."""
    held = HeldRecords()
    logging.getLogger(ROOT).addHandler(held)
    return held


def release(held: HeldRecords) -> None:
    """Stop keeping records (the ones kept stay in ``held.records``)."""
    logging.getLogger(ROOT).removeHandler(held)


def console_warnings_only() -> None:
    """Show only warnings and errors on the console from now on (log files keep every record).

    For a torchrun rank other than 0: rank 0 prints the run's progress and results, which every other rank
    would otherwise print again, once per process.
    """
    for h in logging.getLogger(ROOT).handlers:
        if isinstance(h, logging.StreamHandler) and not isinstance(h, logging.FileHandler):
            h.setLevel(max(h.level, logging.WARNING))


def add_log_file(path, held: HeldRecords | None = None) -> logging.Handler:
    """Also write the package's log records to ``path`` (timestamped), first the ``held`` ones, with their own
    times; returns the handler for :func:`remove_handler`."""
    fh = logging.FileHandler(path, encoding="utf-8")
    fh.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    for record in held.records if held is not None else ():
        fh.handle(record)
    logging.getLogger(ROOT).addHandler(fh)
    return fh


def note_in_file(h: logging.Handler, level: int, message: str) -> None:
    """Write ``message`` to the log file of handler ``h`` only (not to the console, which says it its own way)."""
    h.handle(logging.getLogger(ROOT).makeRecord(ROOT, level, __file__, 0, message, None, None))


def remove_handler(h: logging.Handler) -> None:
    """Detach a handler from :func:`add_log_file` and close its file."""
    logging.getLogger(ROOT).removeHandler(h)
    h.close()


class _NotesSaidIn(logging.Formatter):
    """``%(message)s`` with each :class:`~sca2lstm.notes.Note` among a record's values said in ``lang``; the record
    itself keeps its English text, for any other handler."""

    def __init__(self, lang: str):
        super().__init__("%(message)s")
        self.lang = lang

    def format(self, record: logging.LogRecord) -> str:
        from .notes import Note

        args = record.args
        if isinstance(record.msg, Note) or (isinstance(args, tuple) and any(isinstance(a, Note) for a in args)):
            record = logging.makeLogRecord({
                **record.__dict__,
                "msg": record.msg.said_in(self.lang) if isinstance(record.msg, Note) else record.msg,
                "args": tuple(a.said_in(self.lang) if isinstance(a, Note) else a for a in args)
                if isinstance(args, tuple) else args})
        return super().format(record)


def say_notes_in(lang: str) -> None:
    """The console says a forecast's notes (logged as :class:`~sca2lstm.notes.Note`) in ``lang`` from now on
    (``sca2lstm forecast --language``); a run's log file keeps them in English."""
    for h in logging.getLogger(ROOT).handlers:
        if isinstance(h, _ConsoleHandler):
            h.setFormatter(_NotesSaidIn(lang))
