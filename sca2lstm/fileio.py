"""Where caches live, atomic file writes, strict JSON text, and file digests.

Atomic writes: a unique temp file in the target folder, fsync-ed, then ``os.replace`` onto the target (and the
folder fsync-ed where the platform allows). A crash, a power cut or a failed writer never leaves a half-written
or empty file, and an earlier good file stays as it was.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import shutil
import uuid
from pathlib import Path
from typing import Callable


def default_cache_root() -> Path:
    """``$SCA2LSTM_CACHE_DIR``, else ``~/.cache/sca2lstm`` (a config's ``data.cache_dir`` comes first
    where there is a config: see :func:`sca2lstm.data.dataset.cache_root`)."""
    return Path(os.environ.get("SCA2LSTM_CACHE_DIR") or "~/.cache/sca2lstm").expanduser()


def sync_file(fh) -> None:
    """Flush ``fh`` and fsync it: without this, some filesystems (ext4 with delayed allocation, XFS) show an
    empty file under the new name after a power cut, since the rename can reach the disk before the data."""
    fh.flush()
    os.fsync(fh.fileno())


def sync_folder(folder: Path) -> None:
    """fsync ``folder`` so a rename into it is itself durable; a platform that cannot open a folder for this
    (Windows) or a filesystem that refuses it is skipped (checkpoints, :func:`sca2lstm.checkpoint.atomic_torch_save`, too)."""
    try:
        dfd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass


def atomic_write(path, write: Callable, binary: bool = False) -> Path:
    """Call ``write(fh)`` on a temp file beside ``path``, fsync it, then rename it onto ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # A unique name opened with O_EXCL (not mkstemp, whose 0600 mode would ignore the umask).
    tmp = path.parent / f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"
    try:
        with open(tmp, "xb" if binary else "x", **({} if binary else {"encoding": "utf-8"})) as fh:
            write(fh)
            sync_file(fh)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    sync_folder(path.parent)
    return path


def atomic_write_text(path, text: str) -> Path:
    return atomic_write(path, lambda fh: fh.write(text))


def atomic_write_files(files: dict) -> list[Path]:
    """Write files that go together (``path -> text or bytes``): each to a temp file beside it first, then all
    renamed into place. A write that fails (a full disk) leaves every earlier file as it was, never a new file
    beside an old one it belongs with; only the renames, moments apart, are not one step."""
    temps = {}
    try:
        for path, data in files.items():
            path = Path(path)
            path.parent.mkdir(parents=True, exist_ok=True)
            temps[path] = tmp = path.parent / f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"
            with open(tmp, "xb" if isinstance(data, bytes) else "x",
                      **({} if isinstance(data, bytes) else {"encoding": "utf-8"})) as fh:
                fh.write(data)
                sync_file(fh)
        for path, tmp in temps.items():
            os.replace(tmp, path)
        for folder in {path.parent for path in temps}:
            sync_folder(folder)
    finally:
        for tmp in temps.values():
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
    return list(temps)


@contextlib.contextmanager
def folder_built_aside(final):
    """Build a folder beside ``final`` (yielded: ``.<name>.<pid>.tmp``) and swap it in whole with
    :func:`replace_folder` when the block ends; on an error the half-built folder is removed and ``final`` is
    left as it was."""
    final = Path(final)
    tmp = final.with_name(f".{final.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    _remove_leftovers(final)
    tmp.mkdir(parents=True)
    try:
        yield tmp
        replace_folder(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _remove_leftovers(final: Path) -> None:
    """Remove ``.<name>.<pid>.tmp`` / ``.old`` folders beside ``final`` left by a process that was killed (no
    process of that pid runs any more); a live one's is left alone."""
    if os.name != "posix" or not final.parent.is_dir():  # signal 0 probes a process on POSIX only
        return
    for p in final.parent.glob(f".{final.name}.*"):
        pid = p.name[len(final.name) + 2:].rsplit(".", 1)
        if len(pid) != 2 or pid[1] not in ("tmp", "old") or not pid[0].isdigit():
            continue
        try:
            os.kill(int(pid[0]), 0)
        except ProcessLookupError:
            shutil.rmtree(p, ignore_errors=True)
        except (PermissionError, OSError):
            pass   # alive under another user, or not ours to judge


def replace_folder(tmp, final) -> Path:
    """Move the finished folder ``tmp`` onto ``final``. An earlier ``final`` is moved aside first and
    deleted only after the swap, so a reader never sees a half-written folder and a failure before the
    swap leaves the earlier one as it was; so does a failed swap (or a Ctrl-C between the two renames): the
    earlier folder is moved back rather than left hidden beside it, where the next run's clean-up would delete it."""
    tmp, final = Path(tmp), Path(final)
    old = final.with_name(f".{final.name}.{os.getpid()}.old") if final.exists() else None
    try:
        if old is not None:
            os.replace(final, old)
        os.replace(tmp, final)
    except BaseException:
        if old is not None and old.exists() and not final.exists():
            os.replace(old, final)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return final


def file_sha256(path) -> str:
    """Hex sha256 of the file's bytes (read in 1 MiB chunks)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _finite_or_none(v):
    """``v`` with every NaN or infinite float (in dicts, lists and tuples, at any depth) as None, and NumPy
    scalars as Python numbers."""
    if isinstance(v, dict):
        return {k: _finite_or_none(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_finite_or_none(x) for x in v]
    if hasattr(v, "item") and getattr(v, "ndim", None) == 0:  # a NumPy scalar
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def json_text(obj, indent: int | None = 2, **kwargs) -> str:
    """``obj`` as strict JSON: a value that cannot be computed (NaN, an infinity) is ``null``.

    ``json.dumps`` writes ``NaN``, which is not JSON: jq, R's jsonlite and browsers refuse the whole file.
    ``kwargs`` go to :func:`json.dumps` (``default``, ``ensure_ascii``).
    """
    return json.dumps(_finite_or_none(obj), indent=indent, allow_nan=False, **kwargs)

