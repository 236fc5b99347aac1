"""What every command shares: a one-line-error argument parser, flag types and the error wrapper.

Commands are written as ``def main(argv=None) -> int`` over importable functions; ``run_main`` turns
domain errors into one line on stderr and an exit code (2 usage, 1 data), with a traceback only when
``--debug`` was given.
"""

from __future__ import annotations

import argparse
import errno
import math
import os
import re
import sys
import traceback
from typing import Callable, Sequence

from ..errors import Sca2lstmError, UsageError
from ..logs import add_log_file, logging_for_run, note_in_file, remove_handler, setup_logging  # noqa: F401 - the commands import them from here


#: What argparse takes for a value, not an option, where it starts with '-': a negative number (``-33.8``,
#: argparse's own rule) and a list of them, such as southern or western coordinates
#: (``--points -33.8,151.2;-34,150.9``) and one in exponent form (``--learning_rate -1e-4``), which argparse alone
#: took for an unknown option ("expected one argument") instead of reaching the flag's own refusal.
NEGATIVE_VALUE = re.compile(r"^-(\d|\.\d)[\d.,;\s+eE-]*$")


class ArgumentParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr (exit 2), not the usage block plus a line, a
    mistyped option is answered with the option meant (``--epocs``: did you mean ``--epochs``?), and a value
    list starting with a negative number (:data:`NEGATIVE_VALUE`) is a value. ``examples`` are command
    lines that ``--help`` ends with."""

    def __init__(self, *args, examples: Sequence[str] = (), **kwargs):
        super().__init__(*args, **kwargs)
        # argparse's own attribute (every version since 2.7): its pattern of a negative number
        self._negative_number_matcher = NEGATIVE_VALUE
        #: option -> what to say instead, for an option of another command that a user carries over
        self.meant_by: dict[str, str] = {}
        self.examples = list(examples)

    def format_help(self) -> str:
        # shown as written, not as an epilog: argparse re-wraps an epilog, breaking a command line mid-flag
        text = super().format_help()
        if self.examples:
            text += "\nexamples:\n" + "".join(f"  {e}\n" for e in self.examples)
        return text

    def parse_known_args(self, args=None, namespace=None):
        self._argv = list(sys.argv[1:] if args is None else args)  # for the suggestions of error()
        return super().parse_known_args(args, namespace)

    def error(self, message: str):  # noqa: D401 - argparse API
        sys.stderr.write(f"{self.prog}: error: {message}{self._suggestion(message)}\n")
        raise SystemExit(2)

    def _options(self) -> list:
        """Every option string of this parser and of its subcommands' parsers (the root parser reports the
        options a subcommand did not recognise)."""
        out = []
        for action in self._actions:
            out += [o for o in action.option_strings if o.startswith("--")]
            if isinstance(action, argparse._SubParsersAction):
                for sub in action.choices.values():
                    out += sub._options() if isinstance(sub, ArgumentParser) else []
        return list(dict.fromkeys(out))

    def _suggestion(self, message: str) -> str:
        import difflib

        options = self._options()
        if message.startswith("unrecognized arguments: "):
            typed = message[len("unrecognized arguments: "):].split()
        elif message.startswith("the following arguments are required: "):
            typed = getattr(self, "_argv", [])
        else:
            return ""
        typed = [t.split("=", 1)[0] for t in typed if t.startswith("--") and t.split("=", 1)[0] not in options]
        hints = {}
        for t in typed:
            if t in self.meant_by:  # a flag of another command, e.g. pretraining's --parallel in fine_train.py
                hints[t] = self.meant_by[t]
                continue
            # compared without the leading "--", which every option shares: with it, --bogus was "close" to --jobs
            bare = {o.lstrip("-"): o for o in options if o.startswith("--")}
            match = difflib.get_close_matches(t.lstrip("-"), list(bare), n=1, cutoff=0.6)
            if match and not any(o.startswith(t) for o in options):  # a prefix argparse already takes
                hints[t] = bare[match[0]]
        said = ", ".join(f"{m} for {t}" if len(hints) > 1 else m for t, m in hints.items())
        if message.startswith("unrecognized"):
            return f" (did you mean {said}?)" if hints else ""
        # argparse names the missing arguments only: the unknown ones typed beside them are named too, with the
        # option meant where one is near
        if not typed:
            return ""
        unknown = f"{', '.join(typed)} {'is' if len(typed) == 1 else 'are'} not an option{'' if len(typed) == 1 else 's'}"
        return f" ({unknown}; did you mean {said}?)" if hints else f" ({unknown})"


def _number_type(cast, ok, expected: str):
    """An argparse ``type`` that parses with ``cast`` and accepts values where ``ok`` holds."""
    def parse(s: str):
        try:
            v = cast(s)
        except ValueError:
            raise argparse.ArgumentTypeError(f"invalid value {s!r}: expected {expected}") from None
        if not ok(v) or (isinstance(v, float) and not math.isfinite(v)):
            raise argparse.ArgumentTypeError(f"invalid value {s!r}: expected {expected}")
        return v
    parse.__name__ = cast.__name__  # argparse names the type in its messages
    return parse


positive_int = _number_type(int, lambda v: v >= 1, "an integer >= 1")
non_negative_int = _number_type(int, lambda v: v >= 0, "an integer >= 0")
positive_float = _number_type(float, lambda v: v > 0, "a finite number > 0")
non_negative_float = _number_type(float, lambda v: v >= 0, "a finite number >= 0")
open_unit_float = _number_type(float, lambda v: 0 < v < 1, "a number in (0, 1)")


def iso_date(s: str) -> str:
    """A date flag: ``YYYY-MM-DD`` (returned in that form, so two dates compare as text)."""
    import datetime as dt

    try:
        return dt.date.fromisoformat(str(s).strip()).isoformat()
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid value {s!r}: expected a date YYYY-MM-DD") from None


def basin_id(s: str) -> str:
    """A basin id flag: a string such as 32006, DE110000 or my-gauge, safe for file names."""
    from ..data.ids import check_basin_id
    try:
        return check_basin_id(s)
    except UsageError as e:
        raise argparse.ArgumentTypeError(str(e).replace("station id", "basin id")) from None


def _file_in_the_way(p):
    """The first of ``p``'s existing ancestors that is a file (a folder cannot be made under it), or None."""
    for a in p.parents:
        if a.exists():
            return None if a.is_dir() else a
    return None


def output_file(path, flag: str, example: str):
    """An output file flag checked before any work: not a folder, and not under a file.

    Checked up front so that a mistyped path fails in one line instead of with a traceback after training
    or downloading, and before anything is written beside it. ``example`` is a file name to suggest in a
    folder given by mistake (e.g. ``sca2lstm.pth``).
    """
    from pathlib import Path

    p = Path(path).expanduser()
    if p.is_dir():
        raise UsageError(f"{flag} {p} is a folder; expected a file, e.g. {p / example}")
    blocker = _file_in_the_way(p)
    if blocker is not None:
        raise UsageError(f"{flag} {p}: {blocker} is a file, not a folder")
    return p


def output_folder(path, flag: str):
    """An output folder flag checked before any work: not a file, and not under a file."""
    from pathlib import Path

    p = Path(path).expanduser()
    if p.exists() and not p.is_dir():
        raise UsageError(f"{flag} {p} is a file; expected a folder")
    blocker = _file_in_the_way(p)
    if blocker is not None:
        raise UsageError(f"{flag} {p}: {blocker} is a file, not a folder")
    return p


def add_common_flags(p: argparse.ArgumentParser, config: bool = True, device_from_config: bool | None = None) -> None:
    """Flags every command has: device selection, data location, config file and --debug.

    ``device_from_config``: whether a --device left out is the config's ``training.device`` (pretraining and
    tuning) rather than ``auto`` (default: as ``config``); the help says which."""
    p.add_argument("--data_dir", default=None,
                   help="CAMELS-GB folder, or 'builtin' for the built-in synthetic basins (default: for a "
                        "trained model, the folder recorded in its checkpoint; else $SCA2LSTM_DATA_DIR, else "
                        "the config's data_dir, else the built-in synthetic basins). A model trained on real "
                        "data never runs on the built-in basins, nor the reverse")
    if config:
        p.add_argument("--config", default=None, help="YAML config (default: ./sca2lstm.yaml if present)")
    from_config = config if device_from_config is None else device_from_config
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default=None,
                   help="compute device (default: " + ("the config's training.device, else " if from_config else "")
                        + "'auto': the CPU, faster than a GPU for this model; docs/reference.md)")
    p.add_argument("--no_cuda", action="store_true", help="never use CUDA, even if available")
    p.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    p.add_argument("--quiet", action="store_true",
                   help="no progress bars or progress lines; what the run made (e.g. the model saved and where), "
                        "warnings and errors are still shown")


#: errno values that say the machine refused (a full disk or quota, a read-only file system, no permission),
#: whether or not the error names its file.
_MACHINE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM}


def run_main(prog: str, body: Callable[[argparse.Namespace], int], parser: argparse.ArgumentParser,
             argv: Sequence[str] | None) -> int:
    """Parse ``argv`` and run ``body(args)``, mapping failures to one stderr line and an exit code.

    - :class:`~sca2lstm.errors.Sca2lstmError`: its own exit code (2 usage, 1 data/checkpoint).
    - KeyboardInterrupt: exit 130 (the trainers save a resumable state before it gets here).
    - The reader of stdout gone (a closed pipe): exit 141, quietly.
    - Out of memory: exit 1 with the guide's remedy, a smaller ``--batch_size``.
    - A file the system refuses to read or write (a folder that cannot be made, no permission, a full disk):
      exit 1 naming the file and the system's reason.
    Anything else is a bug and keeps its traceback.
    """
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # argparse: --help (0) or a usage error (2), already printed
        return int(e.code or 0)
    with logging_for_run(getattr(args, "quiet", False)):  # the run's console handlers, off again when it ends
        return _run_body(prog, body, args)


def _run_body(prog: str, body: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    """``body(args)``, its failures mapped as :func:`run_main` says."""
    debug = getattr(args, "debug", False)
    try:
        return int(body(args) or 0)
    except Sca2lstmError as e:
        if debug:
            traceback.print_exc()
        sys.stderr.write(f"{prog}: error: {one_line(e)}\n")
        return e.exit_code
    except KeyboardInterrupt as e:  # the trainers say where their resumable state is
        detail = f"; {one_line(e)}" if str(e) else ""
        sys.stderr.write(f"{prog}: interrupted{detail}\n")
        return 130
    except BrokenPipeError:
        # The reader of the output is gone (`sca2lstm data check | head`): it has what it wanted. End as a command
        # stopped by SIGPIPE does (exit 141), with stdout pointed at /dev/null so the flush at exit fails no more.
        _stdout_to_devnull()
        return 141
    except OSError as e:
        # about no file and not the machine's state (a full disk says no file): a bug, with its traceback
        if e.filename is None and e.errno not in _MACHINE_ERRNOS:
            raise
        if debug:
            traceback.print_exc()
        target = "" if e.filename is None else f"{e.filename} -> {e.filename2}: " if e.filename2 else f"{e.filename}: "
        sys.stderr.write(f"{prog}: error: {target}{one_line(e.strerror or e)}\n")
        return 1
    except MemoryError:
        if debug:
            traceback.print_exc()
        sys.stderr.write(f"{prog}: error: out of host memory; try a smaller --batch_size\n")
        return 1
    except RuntimeError as e:
        if "out of memory" in str(e).lower():
            if debug:
                traceback.print_exc()
            sys.stderr.write(f"{prog}: error: out of memory on the device; try a smaller --batch_size\n")
            return 1
        raise


def _stdout_to_devnull() -> None:
    """Point the process's stdout at /dev/null (where it has a file descriptor; a test's captured stream has not)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # io.UnsupportedOperation is both; a stand-in stream has none
        pass


def one_line(e: BaseException) -> str:
    """An exception's message on one line (its type's name where it has none)."""
    return " ".join(str(e).split()) or type(e).__name__
