"""Checkpoints: building, atomic writes, safe loads, the model rebuilt from one, and clear messages
when a file does not fit. The one place training (which writes them) and evaluation (which reads
them) share.

A checkpoint is a dict of tensors and plain Python types only, so ``torch.load(path,
weights_only=True)`` reads it and a file from a stranger cannot run code. Writes go to a temp file
in the same folder, are fsync-ed, then renamed over the target, so a crash never leaves a half file.
"""

from __future__ import annotations

import os
import pickle
import re
import zipfile
from pathlib import Path

import torch

from .config import Config
from .data.scaling import Scalers
from .errors import CheckpointError, ConfigError
from .fileio import sync_file, sync_folder
from .models.sca2lstm import SCA2LSTM, shape_mismatches

FORMAT = "sca2lstm-checkpoint-v1"
#: The format of a trainer's resumable state (``last_state.pth``), which is no model checkpoint.
STATE_FORMAT = "sca2lstm-train-state-v1"
REQUIRED_KEYS = ("format", "model_state_dict", "config", "scalers", "basins")


def atomic_torch_save(obj, path) -> Path:
    """``torch.save`` to a temp file, fsync, then rename onto ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            try:
                torch.save(obj, f)
            except RuntimeError as e:
                # Ctrl-C inside torch.save: its zip writer then fails to close ("unexpected pos") and that error
                # hides the interrupt; raise the interrupt, which the commands answer with exit 130
                if isinstance(e.__context__, KeyboardInterrupt):
                    raise KeyboardInterrupt from None
                raise
            sync_file(f)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    sync_folder(path.parent)  # make the rename itself durable
    return path


def clean_state_dict(state: dict) -> dict:
    """CPU tensors without the ``module.`` (DDP) or ``_orig_mod.`` (torch.compile) prefixes."""
    out = {}
    for k, v in state.items():
        for prefix in ("module.", "_orig_mod."):
            while k.startswith(prefix):
                k = k[len(prefix):]
        out[k] = v.detach().cpu() if isinstance(v, torch.Tensor) else v
    return out


def folder_given_as_checkpoint(folder) -> str:
    """The message for a folder given where a checkpoint file goes, naming a .pth file in it to give instead
    (the pretrained model at its top, else the newest one below it), or saying it holds none."""
    folder = Path(folder)

    def models(pattern):  # not a trainer's resumable state, nor a file being written; depth-bounded for a big folder
        return sorted((q for q in folder.glob(pattern) if q.name != "last_state.pth" and not q.name.startswith(".")),
                      key=lambda q: (q.stat().st_mtime, str(q)))

    top = models("*.pth")
    below = [] if top else models("*/*.pth") or models("*/*/*.pth") or models("*/*/*/*.pth")
    pick = next((q for q in top if q.name == "sca2lstm.pth"), top[-1] if top else (below[-1] if below else None))
    hint = f"give a .pth file, e.g. {pick}" if pick else "it holds no .pth file"
    return f"checkpoint {folder} is a folder, not a checkpoint; {hint}"


def load_checkpoint(path, require_model: bool = True) -> dict:
    """Load a checkpoint safely (``weights_only=True``) and check its structure.

    Raises
    ------
    CheckpointError
        Missing, truncated, not a checkpoint, carrying code (a pickle payload), or lacking keys.
    """
    p = Path(path)
    if p.is_dir():
        raise CheckpointError(folder_given_as_checkpoint(p))
    if not p.is_file():
        raise CheckpointError(f"checkpoint {p} does not exist")
    if p.stat().st_size == 0:
        raise CheckpointError(f"checkpoint {p} is empty")
    try:
        ckpt = torch.load(p, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        glob = re.search(r"GLOBAL ([\w.]+)", str(e))
        if glob:  # weights_only refused a reference to code: the file is unsafe, whatever else it is
            raise CheckpointError(f"checkpoint {p} was refused: it references {glob.group(1)}, but a checkpoint "
                                  "may hold only tensors and plain Python types (loading it could run code)") from None
        raise CheckpointError(f"checkpoint {p} " + (_looks_like(p) or "is not a PyTorch checkpoint, or holds data "
                                                    "that cannot be loaded safely (unreadable pickle data)")) from None
    except MemoryError:
        raise
    except Exception:  # torch.load on a damaged file raises many types (zip, EOF, KeyError, ...), whose text is
        # torch's internals ("pop from empty list"): the message says what the file looks like instead
        raise CheckpointError(f"checkpoint {p} " + (_looks_like(p) or "is damaged or not a PyTorch checkpoint "
                                                    "(torch.load cannot read it)")) from None
    if not isinstance(ckpt, dict):
        raise CheckpointError(f"checkpoint {p} is not an sca2lstm checkpoint: expected a dict, got {type(ckpt).__name__}")
    if require_model:
        if ckpt.get("format") == STATE_FORMAT:
            model = _model_of_state(p)
            raise CheckpointError(f"checkpoint {p} is a resumable training state (what --resume continues), not a "
                                  "model checkpoint" + (f"; give the model its run wrote, {model}" if model else ""))
        missing = [k for k in REQUIRED_KEYS if k not in ckpt]
        if missing:
            raise CheckpointError(f"checkpoint {p} is not an sca2lstm checkpoint: missing key(s) {missing}")
        if ckpt.get("format") != FORMAT:
            raise CheckpointError(f"checkpoint {p} has format {ckpt.get('format')!r}; expected {FORMAT!r}"
                                  + _format_advice(ckpt.get("format")))
    return ckpt


def _format_advice(fmt) -> str:
    """What to do with a checkpoint of format ``fmt`` (not :data:`FORMAT`), as the end of its one-line error: one
    of a later sca2lstm (a higher ``-v<N>``) is read by that version, which the user upgrades to ('' otherwise)."""
    mine, theirs = (re.fullmatch(r"sca2lstm-checkpoint-v(\d+)", str(f)) for f in (FORMAT, fmt))
    if mine and theirs and int(theirs.group(1)) > int(mine.group(1)):
        from . import __version__

        return (f" (it was written by a later sca2lstm than this {__version__}: upgrade sca2lstm to run it, as "
                "this version cannot read what it holds)")
    return ""


def _model_of_state(state: Path) -> Path | None:
    """The model written by the run whose resumable state is ``state``: a pretraining's ``<name>.pth`` beside its
    ``<name>_run/`` folder, or a fine-tune's ``best_model_basin_<id>.pth`` in its run folder; None where none is."""
    folder = state.parent
    if folder.name.endswith("_run"):
        model = folder.with_name(folder.name[:-len("_run")] + ".pth")
        return model if model.is_file() else None
    return next(iter(sorted(folder.glob("best_model_basin_*.pth"))), None)


def _looks_like(p: Path) -> str | None:
    """What a file ``torch.load`` could not read looks like, as the end of a one-line error ("is a text file, not
    a PyTorch checkpoint ..."), or None where it looks like nothing in particular (binary data)."""
    try:
        with open(p, "rb") as f:
            head = f.read(4096)
    except OSError:
        return None
    if head.startswith(b"PK\x03\x04"):  # torch.save's format is a zip archive
        try:
            with zipfile.ZipFile(p) as z:
                names = z.namelist()
        except (zipfile.BadZipFile, OSError):
            return "is truncated: a zip archive without its end, as a copy or download cut short leaves it"
        if not any(n == "data.pkl" or n.endswith("/data.pkl") for n in names):
            return "is a zip archive, but not a PyTorch checkpoint (it holds no data.pkl)"
        return "is a damaged PyTorch checkpoint (its zip archive cannot be read)"
    if head.startswith(b"version https://git-lfs"):
        return "is a Git LFS pointer, not the model itself ('git lfs pull' fetches the model)"
    if b"\0" in head:
        return None
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as e:
        if e.start < len(head) - 3:  # not a character cut at the end of the 4096 bytes read
            return None
        text = head[:e.start].decode("utf-8")
    first = text.strip().splitlines()[0][:40] if text.strip() else ""
    return f"is a text file, not a PyTorch checkpoint (it begins {first!r})" if first else \
        "is a text file holding only blank space, not a PyTorch checkpoint"


def load_state_into(model: torch.nn.Module, state: dict, source) -> None:
    """``load_state_dict`` with a message naming the mismatched parameters and shapes, or what a damaged
    ``state`` holds instead of tensors."""
    if not isinstance(state, dict) or not all(isinstance(k, str) for k in state):
        raise CheckpointError(f"checkpoint {source} is damaged: its weights are a {type(state).__name__}, not a "
                              "mapping of parameter names to tensors")
    not_tensors = [k for k, v in state.items() if not isinstance(v, torch.Tensor)]
    if not_tensors:  # load_state_dict's own text is a line per parameter, naming no file
        raise CheckpointError(f"checkpoint {source} is damaged: parameter {not_tensors[0]} holds a "
                              f"{type(state[not_tensors[0]]).__name__}, not a tensor"
                              + (f" ({len(not_tensors)} such parameters)" if len(not_tensors) > 1 else ""))
    state = clean_state_dict(state)
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [f"{k}: checkpoint {given} vs model {mine}" for k, given, mine in shape_mismatches(model, state)]
    if missing or unexpected or shapes:
        parts = []
        if shapes:
            parts.append("shape mismatch " + "; ".join(shapes[:3]))
        if missing:
            parts.append(f"missing {missing[:3]}")
        if unexpected:
            parts.append(f"unexpected {unexpected[:3]}")
        raise CheckpointError(f"checkpoint {source} does not fit this model config: {', '.join(parts)}")
    model.load_state_dict(state)


def build_checkpoint(model, cfg: Config, scalers: Scalers, basins, epoch: int, optimizer=None,
                     val_metrics=None, **extra) -> dict:
    """A checkpoint dict of tensors and plain Python types only (``weights_only=True`` loads it)."""
    ckpt = {
        "format": FORMAT,
        "model_state_dict": clean_state_dict(model.state_dict()),
        "model_args": cfg.to_dict()["model"],
        "config": cfg.to_dict(),
        "scalers": scalers.to_dict(),
        "basins": [str(b) for b in basins],
        "epoch": int(epoch),
        "optimizer_state_dict": optimizer.state_dict() if optimizer is not None else None,
        "val_metrics": val_metrics or {},
        "trained_on": pretraining_spans(cfg, basins),
    }
    ckpt.update(extra)
    if ckpt.get("data_dir"):
        # absolute: a relative folder would name another place once the model is used from another folder
        ckpt["data_dir"] = str(Path(ckpt["data_dir"]).expanduser().absolute())
    return ckpt


def pretraining_spans(cfg: Config, basins) -> list[dict]:
    """The days a pretraining run on ``basins`` read: its training targets and the validation days it
    chose its epoch on, as :func:`trained_on` lists them."""
    d, basins = cfg.data, sorted(str(b) for b in basins)
    return [{"role": "train", "basins": basins, "start": str(d.train_start), "end": str(d.train_end)},
            {"role": "validation", "basins": basins, "start": str(d.val_start), "end": str(d.val_end)}]


def trained_on(ckpt: dict) -> list[dict]:
    """Which basins and days the weights of ``ckpt`` learned from (``role`` 'train') or were chosen on
    (``role`` 'validation'): a list of ``{"role", "basins", "start", "end"}`` (inclusive ISO days)."""
    return [dict(s, basins=list(s["basins"])) for s in ckpt["trained_on"]]


def _legacy_trained_on(ckpt: dict, cfg: Config) -> list[dict]:
    """``trained_on`` of a checkpoint written before the key: every basin with a discharge scale was a
    pretraining basin over the configured periods (a fine-tuned basin too, when in doubt: scores on
    those days are then labelled in-sample rather than passed off as a test), and a fine-tuned basin
    also read its stored fine-tuning days."""
    spans = pretraining_spans(cfg, (ckpt.get("scalers") or {}).get("basins", {}))
    basin, periods = ckpt.get("finetuned_basin"), ckpt.get("periods")
    if basin and isinstance(periods, dict) and "fine_tune" in periods:
        start, end = (str(v) for v in periods["fine_tune"])
        spans.append({"role": "train", "basins": [str(basin)], "start": start, "end": end})
    return spans


#: Checkpoint keys newer than some checkpoints, and how the value of such a checkpoint is derived from
#: what it holds (and its config).
_LEGACY_KEYS = {"trained_on": _legacy_trained_on}

#: Config keys newer than some checkpoints, and the value that rebuilds such a checkpoint as it was trained:
#: no cell head (model.cell_readout), the raw model without the persistence blend, no quantile head and a
#: hindcast-only model (no issue-time training); a checkpoint from before the choice of head has the
#: pinball head and was trained on the unweighted MSE; one from before the forecast flag has no such input.
_LEGACY_VALUES = {("model", "cell_readout"): False, ("model", "persistence_blend"): False,
                  ("model", "quantiles"): [], ("training", "forecast_leads"): 0,
                  ("model", "head"): "quantile", ("training", "peak_weight"): 0.0,
                  ("training", "lead_weight"): 1.0,
                  ("data", "forecast_flag"): False}


def load_model(path, device="cpu"):
    """Rebuild the model, config and scalers from a checkpoint.

    Returns
    -------
    model : SCA2LSTM (eval mode, on ``device``), cfg : Config, scalers : Scalers, ckpt : dict
    """
    ckpt = load_checkpoint(path)
    stored = ckpt["config"]
    if isinstance(stored, dict):
        # Keys added after a checkpoint was written get the value that rebuilds it as it was trained.
        stored = {**stored}
        for (section, key), legacy in _LEGACY_VALUES.items():
            values = stored.get(section)
            if isinstance(values, dict) and key not in values:
                stored[section] = {**values, key: legacy}
        data = stored.get("data")
        if isinstance(data, dict) and data.get("basins") == []:  # written before [] was refused: every basin
            stored["data"] = {**data, "basins": None}
    try:
        cfg = Config.from_dict(stored, source=f"config stored in {path}")
    except ConfigError as e:
        raise CheckpointError(f"checkpoint {path} has a config this version cannot use: {e}") from None
    try:
        scalers = Scalers.from_dict(ckpt["scalers"])
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"checkpoint {path} has malformed scalers ({e})") from None
    for key, legacy in _LEGACY_KEYS.items():
        if key not in ckpt:
            ckpt[key] = legacy(ckpt, cfg)
    spans = ckpt["trained_on"]
    if not isinstance(spans, list) or not all(isinstance(sp, dict) and {"role", "basins", "start", "end"} <= set(sp)
                                              and isinstance(sp["basins"], list) for sp in spans):
        # what labels scores in-sample: a damaged record must not pass a training day off as a test day
        raise CheckpointError(f"checkpoint {path} has a malformed trained_on record; expected a list of "
                              "{role, basins, start, end}")
    model = SCA2LSTM(cfg)
    load_state_into(model, ckpt["model_state_dict"], path)
    model.to(device).eval()
    ckpt["source_path"] = str(path)  # for outputs that name their model (operational forecasts)
    return model, cfg, scalers, ckpt
