"""The compiled (C++) loops of the recurrence: built once on first use, then loaded from the cache.

The per-step work of SCA2LSTM is small enough that Python's per-call overhead, not arithmetic, sets
the speed of the loop. ``recurrence_native.cpp`` runs the same two loops (forward, and backpropagation
through time) in C++; it is compiled with ``torch.utils.cpp_extension`` the first time a CPU model
runs (about a minute, once per machine and torch version) into ``$SCA2LSTM_NATIVE_DIR``, else
``$SCA2LSTM_CACHE_DIR/native``, else ``~/.cache/sca2lstm/native``. It needs a C++ compiler and the
Python headers (``ninja`` comes with the package).

``$SCA2LSTM_NATIVE`` chooses:

* ``auto`` (default): use it when it builds; when it cannot (no C++ compiler, e.g. a laptop without
  build tools), log one warning saying why and run the pure-Python loops, which give the same results
  up to float rounding, slower.
* ``1``: require it; a failed build is an error.
* ``0``: never use it (the pure-Python loops).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import logging
import os
import platform
import subprocess
import sysconfig
from pathlib import Path

import torch

from ..errors import ConfigError, TrainingError
from ..fileio import default_cache_root

log = logging.getLogger(__name__)

SOURCE = Path(__file__).with_name("recurrence_native.cpp")
CHOICES = ("auto", "0", "1")
_loaded: dict = {}


def setting() -> str:
    value = os.environ.get("SCA2LSTM_NATIVE", "auto").strip().lower() or "auto"
    if value not in CHOICES:
        raise ConfigError(f"SCA2LSTM_NATIVE={value!r} is not valid; expected one of {', '.join(CHOICES)}")
    return value


@contextlib.contextmanager
def disabled():
    """Inside the block the Python loops run (``SCA2LSTM_NATIVE=0``); the setting is restored after it.
    For benchmarks that time both implementations side by side."""
    old = os.environ.get("SCA2LSTM_NATIVE")
    os.environ["SCA2LSTM_NATIVE"] = "0"
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("SCA2LSTM_NATIVE", None)
        else:
            os.environ["SCA2LSTM_NATIVE"] = old


def build_dir() -> Path:
    if os.environ.get("SCA2LSTM_NATIVE_DIR"):
        return Path(os.environ["SCA2LSTM_NATIVE_DIR"]).expanduser()
    return default_cache_root() / "native"


def _put_ninja_on_path() -> None:
    # cpp_extension runs `ninja` from PATH; the pip package's binary is not on it when the venv's
    # python is run without activating the venv.
    try:
        import ninja
    except ImportError:
        return
    bin_dir = getattr(ninja, "BIN_DIR", None)
    if bin_dir and bin_dir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bin_dir + os.pathsep + os.environ.get("PATH", "")


def compile_flags() -> list[str]:
    """-O3, plus AVX2/FMA where torch itself found them on this CPU: the element-wise loops (sigmoid,
    tanh, softmax) are written to vectorise, and 8 lanes instead of SSE's 4 halve their cost."""
    flags = ["-O3", "-fno-trapping-math"]  # no FP-exception semantics: lets exp and the selects vectorise
    if platform.machine().lower() in ("x86_64", "amd64") and \
            torch.backends.cpu.get_cpu_capability() in ("AVX2", "AVX512"):
        flags += ["-mavx2", "-mfma"]
    return flags


def _source_copy(folder: Path) -> Path:
    """The source, copied into the build folder once, so every checkout compiles the same path.

    ninja's build file names the source by its absolute path: compiled from two checkouts (a clone
    beside the working copy, a git worktree, another virtual environment) that share the cache, each
    would rebuild the module whenever the other had built it last, a minute each time. The folder's
    name carries the hash of the source, so an existing copy is this very text; it is written once
    (atomically, as concurrent first runs may race) and never touched again, since a newer mtime
    would make ninja rebuild.
    """
    copy = folder / SOURCE.name
    if not copy.exists():
        tmp = folder / f".{SOURCE.name}.{os.getpid()}.tmp"
        tmp.write_bytes(SOURCE.read_bytes())
        os.replace(tmp, copy)
    return copy


def get():
    """The compiled module, or None when it is switched off or (with ``auto``) cannot be built."""
    mode = setting()
    if mode == "0":
        return None
    if mode not in _loaded:
        _loaded[mode] = _build(required=(mode == "1"))
    return _loaded[mode]


def module_name(flags: list[str]) -> str:
    """The build's name: a hash of the source, the torch version, the Python ABI and the compiler flags.

    An edited source, another torch, another Python or a cache folder shared with a machine of another CPU
    kind builds afresh; anything else finds the module already built, whichever environment built it."""
    abi = sysconfig.get_config_var("EXT_SUFFIX") or ""
    digest = hashlib.sha256(SOURCE.read_bytes() + torch.__version__.encode() + abi.encode()
                            + " ".join(flags).encode()).hexdigest()[:12]
    return f"sca2lstm_native_{digest}"


def _load_built(name: str, path: Path):
    """Import an already-built module directly, or None if there is none or it does not load.

    Why not through ``cpp_extension.load``: that runs ninja each time to see whether to rebuild (about
    0.3 s of every command's start), and ninja's build file names the include folders of the virtual
    environment that wrote it, so two environments sharing the cache would each rebuild, a minute each
    time, after the other had built last. The name already fixes what the module was built from."""
    if not path.is_file():
        return None
    try:
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    except (ImportError, OSError) as exc:  # e.g. a build stopped half-way: build it again below
        log.debug("rebuilding the C++ recurrence: %s did not load (%s)", path, exc)
        return None


def _hold(handle) -> bool:
    """Lock the open file ``handle`` for this process (waiting while another holds it): True, or False where the
    system has no lock that it lets go when the process dies (neither ``fcntl`` nor ``msvcrt``, or a file system
    that refuses ``flock``)."""
    try:
        import fcntl
    except ImportError:
        fcntl = None
    if fcntl is not None:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        except OSError:  # a file system without locks (some network shares): cpp_extension's lock alone, as before
            return False
        return True
    try:
        import msvcrt
    except ImportError:
        return False
    handle.seek(0)
    while True:
        try:
            msvcrt.locking(handle.fileno(), msvcrt.LK_LOCK, 1)  # tries for 10 s, then raises: try again
            return True
        except OSError:
            continue


@contextlib.contextmanager
def _build_lock(folder: Path):
    """Hold the build folder for this process, with a lock the system lets go when the process dies.

    cpp_extension's own lock is a file (``lock``) that it removes when the build ends; a process killed in the
    middle of the build (the terminal window closed, ``kill``, a power cut) leaves it behind, and every later
    command then waited on it forever under "compiling the C++ recurrence ... about a minute". Under this lock
    no other sca2lstm process is building in ``folder``, so a ``lock`` file found there is such a leftover and
    is removed (one warning). Where the system offers no such lock, only cpp_extension's remains."""
    with open(folder / "sca2lstm.lock", "a+b") as handle:   # closing it (or dying) lets the lock go
        if _hold(handle):
            stale = folder / "lock"
            if stale.exists():
                log.warning("removing %s, left by a build of the C++ recurrence that was stopped half-way", stale)
                stale.unlink(missing_ok=True)
        yield


def _build(required: bool):
    flags = compile_flags()
    name = module_name(flags)
    folder = build_dir() / name
    built = _load_built(name, folder / f"{name}.so")
    if built is not None:
        return built
    from torch.utils import cpp_extension

    _put_ninja_on_path()
    log.info("compiling the C++ recurrence (once per machine and torch version, about a minute)")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with _build_lock(folder):
            built = _load_built(name, folder / f"{name}.so")  # another process built it while this one waited
            if built is not None:
                return built
            return cpp_extension.load(name=name, sources=[str(_source_copy(folder))], build_directory=str(folder),
                                      extra_cflags=flags, verbose=False)
    # What a missing or failing compiler looks like: cpp_extension raises these and nothing else.
    except (OSError, RuntimeError, ImportError, subprocess.CalledProcessError) as exc:
        # The compiler's own "error:" line says more than the command line cpp_extension quotes first.
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
        reason = next((ln for ln in lines if "error:" in ln), lines[0] if lines else type(exc).__name__)[:300]
        if required:
            raise TrainingError(f"SCA2LSTM_NATIVE=1 but the C++ recurrence did not build: {reason}") from exc
        log.warning("C++ recurrence unavailable (%s); using the Python loops (same results, slower). "
                    "Set SCA2LSTM_NATIVE=0 to silence this.", reason)
        return None
