"""One trainer for pretraining and fine-tuning, readable from top to bottom.

Per epoch: draw training windows (a fresh random tiling of each basin's training days), run them in
mini-batches (AdamW, gradient clipping), then forecast the validation days exactly as prediction does
and score them. ReduceLROnPlateau and early stopping follow the validation loss; the best weights are
kept and restored. After each epoch a resumable state is written atomically, so Ctrl-C or a crash
loses at most the epoch in progress, and ``resume`` repeats an uninterrupted run bit for bit on CPU
(each epoch seeds its own random streams from (seed, epoch)).
"""

from __future__ import annotations

import copy
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..data.dataset import SequenceData, chunk_starts, recorded_data
from ..data.features import BASIN_Q, BASIN_SSI
from ..data.issue_time import issue_time_columns, mask_issue_time
from ..logs import FILE_ONLY, progress_bar
from ..errors import CheckpointError, TrainingError, UsageError
from ..checkpoint import FORMAT as CHECKPOINT_FORMAT
from ..checkpoint import STATE_FORMAT, atomic_torch_save, clean_state_dict, load_checkpoint, load_state_into
from ..evaluation.evaluate import EvalResult, evaluate
from ..weather.emulator import emulate
from ..weather.windows import LeadWeather
from .augment import hide_discharge
from .loss import head_loss, masked_mse, weighted_squared_errors
from .sca_optimizer import make_optimizer

log = logging.getLogger(__name__)


#: What a resumable training state (``last_state.pth``, format :data:`~sca2lstm.checkpoint.STATE_FORMAT`) holds.
STATE_KEYS = ("epoch", "model_state_dict", "optimizer_state_dict", "scheduler_state_dict", "history",
              "best_state_dict", "best_val", "best_epoch", "bad_epochs", "meta")


@dataclass
class TrainSettings:
    epochs: int
    batch_size: int
    learning_rate: float
    weight_decay: float
    patience: int
    lr_factor: float
    lr_patience: int
    grad_clip: float
    coverage: float
    max_bad_batches: int
    seed: int
    seq_len: int
    spinup: int
    lead_days: int
    mixed_precision: bool = False
    discharge_dropout: float = 0.0
    ssi_window: int = 30  # data.ssi_window: hidden discharge is also taken out of the SSI state
    windows_per_epoch: int | None = None  # a fixed number of windows per epoch instead of ``coverage``
    max_windows_per_epoch: int | None = None  # a cap on the ``coverage`` rule (fair draw above it)
    forecast_leads: int = 0            # issue-time windows end with this many lead days (0: none)
    forecast_fraction: float = 0.0     # share of the training windows that are issue-time forecasts
    forecast_weather_known: float = 0.0  # share of those that keep the observed weather (perfect forecast)
    forecast_emulated: float = 0.0     # share of the weather-known ones that see an emulated forecast instead
    forecast_emulator: tuple = ("swap",)  # its error kinds (weather/emulator.py KINDS); each window draws one
    high_precip_mm: float = 10.0       # data.high_precip_mm / low_precip_mm: the derived wet/dry-day runs
    low_precip_mm: float = 1.0
    peak_weight: float = 0.0           # training.peak_weight: high flows' extra weight in the MSE
    lead_weight: float = 1.0           # training.lead_weight: weight of issue-time windows' lead days in the MSE
    optimizer: str = "adamw"           # training.optimizer: adamw | sca (training/sca_optimizer.py)
    time_budget_s: float | None = None  # stop training (mid-epoch if need be) once this much wall time is spent
    validation_loss: str = "training_mixture"  # early stopping on: "training_mixture" or "hindcast"


def state_data(state_path) -> tuple | None:
    """The data folder a run read, as its resumable state records it, for ``--resume`` to read it again.

    Parameters
    ----------
    state_path : str or os.PathLike
        A run's ``last_state.pth``.

    Returns
    -------
    (str, bool) or None
        ``(data_dir, builtin_data)`` (:func:`~sca2lstm.data.dataset.recorded_data`); None where the state records
        none, is missing or cannot be read (the resume itself then says what is wrong in one line).
    """
    if not Path(state_path).is_file():
        return None
    try:
        meta = torch.load(state_path, map_location="cpu", weights_only=True).get("meta")
    except Exception:  # not a state we can read: Trainer.load_state names it
        return None
    return recorded_data(meta)


def resumable_interrupt(interrupt: KeyboardInterrupt, state_path) -> KeyboardInterrupt:
    """The Ctrl-C ``interrupt`` as the command reports it, naming the resumable state where one is saved.

    :meth:`Trainer.fit` names the state of an interrupted epoch itself. A run stopped after its last epoch
    (evaluation, persistence blend, the minutes of calibration) has its finished training saved, from which
    ``--resume`` completes the run; without this the command said only 'interrupted', and its log nothing.

    Parameters
    ----------
    interrupt : KeyboardInterrupt
        The exception caught.
    state_path : str or os.PathLike
        The run's resumable state (``last_state.pth``).

    Returns
    -------
    KeyboardInterrupt
        ``interrupt`` itself where it has a message or no state is saved; else one whose message says where
        the state is and to rerun with ``--resume`` (also logged, so the run's log says how it ended).
    """
    if str(interrupt) or not Path(state_path).is_file():
        return interrupt
    hint = f"the run's state is saved in {state_path}; rerun the same command with --resume added to continue"
    log.info("Interrupted: %s", hint, extra=FILE_ONLY)  # the CLI prints it on stderr
    return KeyboardInterrupt(hint)


def _rank_world():
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


#: Config keys a resumed run may change: how long it runs and where, not what it learns from or how.
#: The data folder is compared by the data (the files' hashes, the scalers), not by its path.
RESUME_MAY_DIFFER = {("training", "epochs"), ("finetune", "epochs"), ("training", "device"),
                     ("training", "compile"), ("data", "data_dir"), ("data", "cache_dir")}


def _short(v, n: int = 6) -> str:
    if isinstance(v, list) and len(v) > n:
        return f"[{', '.join(map(str, v[:n]))}, ... ({len(v)} in all)]"
    return repr(v)


def resume_difference(recorded: dict, current: dict) -> str | None:
    """What differs between a recorded run's meta and this run's (``None``: nothing that matters).

    Compares the basins, every config key except :data:`RESUME_MAY_DIFFER`, the source checkpoint, the
    days trained and validated on (a fine-tune's ``split``), the data files' hashes and the scalers fitted
    on the training data; names the first difference found.
    """
    rb, cb = list(recorded.get("basins") or []), list(current.get("basins") or [])
    if rb != cb:
        gone, new = [b for b in rb if b not in cb], [b for b in cb if b not in rb]
        what = "; ".join(x for x in (f"not in this run: {_short(gone)}" if gone else "",
                                     f"new in this run: {_short(new)}" if new else "") if x) or "another order"
        return f"basins differ, {what}"
    rc, cc = recorded.get("config") or {}, current.get("config") or {}
    for section in sorted(set(rc) | set(cc)):
        rs, cs = rc.get(section) or {}, cc.get(section) or {}
        for key in sorted(set(rs) | set(cs)):
            if (section, key) in RESUME_MAY_DIFFER:
                continue
            if rs.get(key, "(not set)") != cs.get(key, "(not set)"):
                return f"{section}.{key}: recorded {_short(rs.get(key, '(not set)'))}, now {_short(cs.get(key, '(not set)'))}"
    if recorded.get("source_sha256") and current.get("source_sha256") and \
            recorded["source_sha256"] != current["source_sha256"]:
        return "--pretrained_model is another checkpoint than the one the run started from"
    rsp, csp = recorded.get("split"), current.get("split")
    if rsp and csp and rsp != csp:
        part = next(k for k in ("train", "validation") if rsp.get(k) != csp.get(k))
        return (f"the {part} days differ: recorded {'..'.join(rsp.get(part) or [])}, now {'..'.join(csp.get(part) or [])}"
                " (--test_start, --fine_tune_ratio or the record changed)")
    rh, ch = recorded.get("data_sha256") or {}, current.get("data_sha256") or {}
    for b in cb:
        if rh.get(b) and ch.get(b) and rh[b] != ch[b]:
            return f"the data file of basin {b} changed since the recorded run"
    rsc, csc = (recorded.get("scalers") or {}), (current.get("scalers") or {})
    if rsc and csc and rsc != csc:
        rbs, cbs = rsc.get("basins") or {}, csc.get("basins") or {}
        changed = [b for b in cb if rbs.get(b) != cbs.get(b)]
        return (f"the training data differ: the scaling fitted on basin {changed[0]}'s training days changed"
                if changed else "the training data differ: the input scaling fitted on them changed")
    return None


class Trainer:
    """Train ``model`` on windows of ``train_data`` and early-stop on ``val_data``.

    Parameters
    ----------
    model : torch.nn.Module
        Parameters with ``requires_grad=False`` stay frozen (they are not given to the optimizer).
    train_periods, val_periods : list of (i0, i1)
        Per-basin half-open day ranges: training targets, and validation days.
    state_path : Path
        Where the resumable state is written after every epoch.
    meta : dict
        Plain data stored with the resumable state (config, scalers, basins), so a resume needs
        nothing else.
    """

    def __init__(self, model, train_data: SequenceData, train_periods, val_data: SequenceData, val_periods,
                 settings: TrainSettings, device, state_path: Path, meta: dict, progress: bool = True,
                 ddp_model=None, epoch_callback=None, weather_archive=None):
        self.model = model
        self.net = model if ddp_model is None else ddp_model  # DDP wrapper or compiled module, if any
        self.train_data, self.train_periods = train_data, train_periods
        self.val_data, self.val_periods = val_data, val_periods
        self.s = settings
        self.device = torch.device(device)
        self.state_path = Path(state_path)
        self.meta = meta
        self.progress = progress
        self.rank, self.world = _rank_world()
        params = [p for p in model.parameters() if p.requires_grad]
        self.optimizer = make_optimizer(settings.optimizer, params, settings.learning_rate, settings.weight_decay)
        # epoch_callback(epoch, row) after each epoch's record, ``row`` that epoch's history row (e.g. Optuna's
        # pruning); may raise.
        self.epoch_callback = epoch_callback
        self.deadline = math.inf  # time.time() after which training stops (settings.time_budget_s)
        self.scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
            self.optimizer, mode="min", factor=settings.lr_factor, patience=settings.lr_patience)
        self.history: list[dict] = []
        self.best_state = copy.deepcopy(clean_state_dict(model.state_dict()))
        self.best_val = math.inf
        self.best_epoch = 0
        self.bad_epochs = 0
        self.bad_batches = 0  # consecutive non-finite losses; counts across epochs (short epochs too)
        self.epoch = 0  # completed epochs
        kinds = list(train_data.scalers.kinds)
        self.q_column = kinds.index(BASIN_Q) if BASIN_Q in kinds else None  # lagged discharge input
        self.ssi_column = kinds.index(BASIN_SSI) if BASIN_SSI in kinds else None  # derived from it
        sc = train_data.scalers.basins
        self.basin_scales = np.array([[sc[b].q_mean, sc[b].q_std, sc[b].ssi_mean, sc[b].ssi_std]
                                      for b in train_data.basins], dtype=np.float64).reshape(-1, 4)  # [n_basins, 4]
        self.issue_cols = None
        if settings.forecast_leads > 0 and settings.forecast_fraction > 0:
            self.issue_cols = issue_time_columns(train_data.scalers.feature_names, kinds)
        # Forecast weather for the lead days of weather-known windows: a station's archive of the
        # forecasts it had (weather_archive, sca2lstm/weather/archive.py), else an emulated forecast.
        self.weather_archive = weather_archive
        self.lead_weather = None
        if self.issue_cols is not None and (settings.forecast_emulated > 0 or weather_archive is not None):
            sc = train_data.scalers
            self.lead_weather = LeadWeather(sc.feature_names, sc.x_mean, sc.x_std, settings.high_precip_mm,
                                            settings.low_precip_mm)
        # The quantile head (if any) trains on the pinball loss from detached inputs.
        self.quantiles = list(getattr(model, "quantiles", None) or [])
        self.head_kind = getattr(model, "head_kind", "quantile")
        head = getattr(model, "quantile_head", None)
        head_ids = {id(p) for p in head.parameters()} if head is not None else set()
        trainable = [p for p in model.parameters() if p.requires_grad]
        self.head_params = [p for p in trainable if id(p) in head_ids]
        self.point_params = [p for p in trainable if id(p) not in head_ids]

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict:
        return {"format": STATE_FORMAT, "epoch": self.epoch,
                "model_state_dict": clean_state_dict(self.model.state_dict()),
                "optimizer_state_dict": self.optimizer.state_dict(),
                "scheduler_state_dict": self.scheduler.state_dict(),
                "history": self.history, "best_state_dict": self.best_state, "best_val": self.best_val,
                "best_epoch": self.best_epoch, "bad_epochs": self.bad_epochs, "meta": self.meta}

    def load_state(self, path) -> None:
        """Continue from the resumable state at ``path``.

        Raises
        ------
        CheckpointError
            ``path`` is not a resumable state (a model checkpoint, another file) or a damaged one: one line
            naming it and what it is.
        UsageError
            The state records another run (config, basins, data): one line naming the first difference.
        """
        try:
            st = load_checkpoint(path, require_model=False)
        except CheckpointError as e:  # what the file is instead ("a text file, not a PyTorch checkpoint", ...)
            raise CheckpointError(f"--resume: {e}") from None
        fmt = st.get("format")
        if fmt != STATE_FORMAT:
            what = ("an sca2lstm model checkpoint" if fmt == CHECKPOINT_FORMAT else
                    f"a file of format {fmt!r}" if isinstance(fmt, str) else "a PyTorch file without a format key")
            raise CheckpointError(f"--resume: {path} is {what}, not a resumable training state (the "
                                  "last_state.pth a run writes after each epoch)")
        missing = [k for k in STATE_KEYS if k not in st]
        if missing:
            raise CheckpointError(f"--resume: {path} is a damaged resumable training state: it lacks {missing}")
        # Before the weights: a state of another model config is named by its config key, not a tensor shape.
        diff = resume_difference(st["meta"] if isinstance(st["meta"], dict) else {}, self.meta or {})
        if diff:
            raise UsageError(f"--resume: {path} records another run ({diff}); start without --resume, or "
                             "resume with the flags, config and data of that run")
        load_state_into(self.model, st["model_state_dict"], path)  # a mismatch: one line naming the keys
        best, own = st["best_state_dict"], self.model.state_dict()
        if not isinstance(best, dict) or set(best) != set(own) or any(
                not isinstance(best[k], torch.Tensor) or best[k].shape != own[k].shape for k in own):
            # restored only once training ends: found then, the resumed epochs would be spent before a traceback
            raise CheckpointError(f"--resume: {path} is a damaged resumable training state: its best weights "
                                  "(best_state_dict) do not fit the model")
        try:
            self.optimizer.load_state_dict(st["optimizer_state_dict"])
            self.scheduler.load_state_dict(st["scheduler_state_dict"])
            self.history = list(st["history"])
            self.best_state, self.best_val = clean_state_dict(st["best_state_dict"]), float(st["best_val"])
            self.best_epoch, self.bad_epochs, self.epoch = (int(st["best_epoch"]), int(st["bad_epochs"]),
                                                            int(st["epoch"]))
        except (KeyError, TypeError, ValueError, AttributeError) as e:  # torch's own text names no file
            detail = " ".join(str(e).split())[:120]
            raise CheckpointError(f"--resume: {path} is a damaged resumable training state ({type(e).__name__}: "
                                  f"{detail})") from None
        log.info("Resuming from %s after epoch %d", path, self.epoch)

    def _save_state(self) -> None:
        if self.rank == 0:
            atomic_torch_save(self.state_dict(), self.state_path)

    # ------------------------------------------------------------------ loop
    def _validate(self) -> EvalResult:
        s = self.s
        return evaluate(self.model, self.val_data, self.val_periods, s.seq_len, s.spinup, s.lead_days, self.device)

    def _validation_mixture(self) -> dict:
        """The training objective on the validation days: ``loss`` (MSE + the head's loss) and its parts.

        The validation periods are tiled into training-shaped windows (:func:`chunk_starts`), and the
        same share of them as in training is turned into issue-time forecasts, with draws fixed for the
        whole run so that epochs compare. No discharge dropout: it augments the inputs, it is not part
        of the objective. ``mse_issue`` is the MSE of the issue-time windows alone (with the objective's
        ``lead_weight``), ``mse_leads`` the plain MSE of their days after the issue date, ``mse_hindcast``
        that of the other windows.
        """
        s, d = self.s, self.val_data
        rng = np.random.default_rng([s.seed, 1])  # the same windows and draws every epoch
        b_idx = [np.full(0, 0, dtype=np.int64)]
        starts = [np.full(0, 0, dtype=np.int64)]
        for b, (i0, i1) in enumerate(self.val_periods):
            if i1 > i0:
                st = chunk_starts(i0, i1, s.seq_len, s.spinup)
                b_idx.append(np.full(len(st), b, dtype=np.int64))
                starts.append(st)
        b_idx, starts = np.concatenate(b_idx), np.concatenate(starts)
        # squared error and count: hindcast windows, issue-time windows, their lead days; head loss sum
        sums = np.zeros(7)
        was_training = self.model.training
        self.model.eval()
        with torch.no_grad():
            for lo in range(0, len(b_idx), 256):
                bb, ss = b_idx[lo:lo + 256], starts[lo:lo + 256]
                x, miss, y, st, stm = d.gather(bb, ss, s.seq_len)
                mask = d.loss_mask(bb, ss, s.seq_len, s.spinup, self.val_periods)
                q_in, issue = y, np.zeros(len(bb), dtype=bool)
                if self.issue_cols is not None:
                    x, miss, q_in, issue = self._issue_time_windows(x, miss, y, rng, bb, ss)
                t = [torch.from_numpy(a).to(self.device) for a in (x, miss, st, stm, q_in)]
                out = self.model(*t[:4], q_obs=t[4], return_head=bool(self.quantiles))
                pred, quants = out if self.quantiles else (out, None)
                yt = torch.from_numpy(y).to(self.device)
                w = self._step_weights(issue, y.shape[1])
                # the training MSE's weighted errors, summed per window to split them by kind
                sq, valid = weighted_squared_errors(pred.float(), yt, torch.from_numpy(mask).to(self.device),
                                                    s.peak_weight, w)
                sq = sq.sum(1)
                n = valid.sum(1)
                iss = torch.from_numpy(issue).to(self.device)
                sums[0] += float(sq[~iss].sum())
                sums[1] += float(n[~iss].sum())
                sums[2] += float(sq[iss].sum())
                sums[3] += float(n[iss].sum())
                if s.forecast_leads > 0:  # the days after the issue date: the last forecast_leads steps
                    lead = valid[iss, -s.forecast_leads:]
                    err = pred.float()[iss, -s.forecast_leads:] - torch.nan_to_num(yt[iss, -s.forecast_leads:])
                    sums[4] += float((torch.where(lead, err, 0.0) ** 2).sum())
                    sums[5] += float(lead.sum())
                if quants is not None:
                    head = head_loss(self.head_kind, quants.float(), yt, valid, self.quantiles, w)
                    sums[6] += float(head) * float(n.sum())
        self.model.train(was_training)
        n_all = sums[1] + sums[3]
        if n_all == 0:
            return {k: float("nan") for k in ("loss", "mse", "head", "mse_hindcast", "mse_issue", "mse_leads")}
        mse, head = float((sums[0] + sums[2]) / n_all), float(sums[6] / n_all)
        return {"loss": mse + head, "mse": mse, "head": head,
                "mse_hindcast": float(sums[0] / sums[1]) if sums[1] else float("nan"),
                "mse_issue": float(sums[2] / sums[3]) if sums[3] else float("nan"),
                "mse_leads": float(sums[4] / sums[5]) if sums[5] else float("nan")}

    def _train_epoch(self, epoch: int) -> float:
        s, d = self.s, self.train_data
        rng = np.random.default_rng([s.seed, epoch])  # per-epoch streams: resume == uninterrupted
        torch.manual_seed(s.seed * 1000 + epoch)
        b_idx, starts = d.training_windows(self.train_periods, s.seq_len, s.spinup, s.coverage, rng,
                                             n_windows=s.windows_per_epoch, max_windows=s.max_windows_per_epoch)
        if self.world > 1:  # DistributedSampler-like: each rank takes every world-th window
            n = len(b_idx) // self.world * self.world
            b_idx, starts = b_idx[self.rank:n:self.world], starts[self.rank:n:self.world]
        self.net.train()
        total, total_mse, count = 0.0, 0.0, 0
        batches = range(0, len(b_idx), s.batch_size)
        bar = progress_bar(batches, self.progress and self.rank == 0, desc=f"epoch {epoch}", leave=False,
                           unit="batch")
        for lo in bar:
            if time.time() > self.deadline:
                break
            bb, ss = b_idx[lo:lo + s.batch_size], starts[lo:lo + s.batch_size]
            x, miss, y, st, stm = d.gather(bb, ss, s.seq_len)
            mask = d.loss_mask(bb, ss, s.seq_len, s.spinup, self.train_periods)
            q_in = y  # observed discharge as the model may read it; y itself stays the target
            if s.discharge_dropout > 0 and self.q_column is not None:
                x, miss, q_in = hide_discharge(x, miss, y, s.discharge_dropout, s.lead_days, self.q_column, rng,
                                               ssi_column=self.ssi_column, ssi_window=s.ssi_window,
                                               scales=self.basin_scales[bb])
            issue = np.zeros(len(bb), dtype=bool)
            if self.issue_cols is not None:
                x, miss, q_in, issue = self._issue_time_windows(x, miss, q_in, rng, bb, ss)
            t = [torch.from_numpy(a).to(self.device) for a in (x, miss, st, stm, y, mask, q_in)]
            t.append(self._step_weights(issue, y.shape[1]))
            rng_state = torch.get_rng_state()  # the batch's dropout masks, replayed by the closure
            loss, pred, quants, mse = self._batch_loss(t)
            if not bool((t[5] & torch.isfinite(t[4])).any()):
                if self.world == 1:
                    continue  # no observed target in this batch: nothing to learn, not an error
                loss = pred.sum() * 0.0  # under DDP every rank must still take part in the all-reduce
                if quants is not None:  # ... with a gradient (of 0) for every parameter, the head's too
                    loss = loss + quants.sum() * 0.0
            if not torch.isfinite(loss):
                self.bad_batches += 1
                bad = self.bad_batches
                where = self._describe_batch(bb, ss)
                log.warning("non-finite loss (%s) in the batch of %s; skipped (%d in a row)", loss.item(), where, bad)
                if bad >= s.max_bad_batches:
                    raise TrainingError(f"{bad} consecutive batches had a non-finite loss (last: {where}); "
                                        "check the inputs or lower --learning_rate")
                self.optimizer.zero_grad(set_to_none=True)
                continue
            self.bad_batches = 0
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            # Clipped apart: the head's gradients must not rescale the point forecast's.
            torch.nn.utils.clip_grad_norm_(self.point_params, s.grad_clip)
            if self.head_params:
                torch.nn.utils.clip_grad_norm_(self.head_params, s.grad_clip)
            if getattr(self.optimizer, "needs_closure", False):
                def closure(t=t, rng_state=rng_state):  # the batch loss at the optimizer's candidate weights
                    torch.set_rng_state(rng_state)
                    with torch.no_grad():
                        return self._batch_loss(t)[0]
                self.optimizer.step(closure)
            else:
                self.optimizer.step()
            total += loss.item()
            total_mse += mse.item()
            count += 1
            bar.set_postfix(loss=f"{total / count:.4f}")
        bar.close()
        t = torch.tensor([total, total_mse, float(count)], dtype=torch.float64)
        if self.world > 1:
            torch.distributed.all_reduce(t)
        sizes = {"windows": len(b_idx), "batches": len(batches)}  # this rank's
        if t[2] == 0:
            return {"loss": float("nan"), "mse": float("nan"), "head": float("nan"), **sizes}
        loss, mse = float(t[0] / t[2]), float(t[1] / t[2])
        return {"loss": loss, "mse": mse, "head": loss - mse, **sizes}

    def _batch_loss(self, t):
        """(loss, point forecast, quantiles or None, the loss's MSE part) of one batch ``t`` = [x, miss,
        static, static mask, y, loss mask, observed discharge input, step weights or None] (tensors on the
        device)."""
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.s.mixed_precision):
            if self.quantiles:
                pred, quants = self.net(t[0], t[1], t[2], t[3], q_obs=t[6], return_head=True)
            else:
                pred, quants = self.net(t[0], t[1], t[2], t[3], q_obs=t[6]), None
        mse = masked_mse(pred.float(), t[4], t[5], self.s.peak_weight, t[7])
        loss = mse
        if quants is not None:
            # Added to the MSE; the head's inputs are detached, so only the head learns from it.
            loss = loss + head_loss(self.head_kind, quants.float(), t[4], t[5], self.quantiles, t[7])
        return loss, pred, quants, mse

    def _step_weights(self, issue: np.ndarray, length: int) -> torch.Tensor | None:
        """The loss weight of each step [B, length]: ``lead_weight`` on the lead days of the issue-time
        windows, 1 elsewhere; None where every weight is 1.

        Why: such a window's lead days are the last ``forecast_leads`` of some 180 loss steps, so the
        forecasts a duty officer reads carry about 2 % of the loss; the weight lets them count more."""
        s = self.s
        if s.lead_weight == 1 or s.forecast_leads == 0 or not issue.any():
            return None
        w = np.ones((len(issue), length), dtype=np.float32)
        w[issue, length - s.forecast_leads:] = s.lead_weight
        return torch.from_numpy(w).to(self.device)

    def _issue_time_windows(self, x, miss, q_in, rng, bb, ss):
        """Turn a random share of the batch into issue-time forecasts (data/issue_time.py).

        Such a window's issue date is ``forecast_leads`` days before its last day; a share of them keep
        the weather of the lead days: the archived forecast of their issue date where the basin has an
        archive that holds it, else an emulated forecast for a share ``forecast_emulated`` of them, else
        the observed weather (a perfect forecast). The draws come from the epoch's rng, so a resumed run
        repeats them (and a run without archive or emulation draws exactly what it drew before).
        Returns x, miss, q_in and the issue-time flags [B].
        """
        s = self.s
        B, L = q_in.shape
        issue = rng.random(B) < s.forecast_fraction
        weather = rng.random(B) < s.forecast_weather_known
        t0 = np.where(issue, L - 1 - s.forecast_leads, L - 1)
        forecast = np.zeros(B, dtype=bool)
        if self.lead_weather is not None:
            x, miss, forecast = self._forecast_weather(x, miss, rng, issue & weather, int(L - 1 - s.forecast_leads),
                                                       bb, ss)
        return (*mask_issue_time(x, miss, q_in, t0, self.issue_cols, s.lead_days, weather, forecast), issue)

    def _forecast_weather(self, x, miss, rng, chosen, pos, bb, ss):
        """Put archived or emulated forecasts into the lead days of the ``chosen`` windows; also returns
        which windows got one [B]."""
        s, lw = self.s, self.lead_weather
        done = np.zeros(len(chosen), dtype=bool)
        if self.weather_archive is not None and chosen.any():
            rows = np.flatnonzero(chosen)
            fc, found = self.weather_archive.lookup(bb[rows], ss[rows] + pos, s.forecast_leads, rng)
            if found.any():
                x, miss = lw.put(x, miss, pos, {k: v[found] for k, v in fc.items()}, rows[found])
                done[rows[found]] = True
        if s.forecast_emulated > 0:
            emu = chosen & ~done & (rng.random(len(chosen)) < s.forecast_emulated)
            if emu.any():
                kinds = tuple(s.forecast_emulator)
                # one kind: no extra draw, so such a run repeats what it drew before kinds existed
                pick = np.zeros(len(chosen), dtype=np.int64) if len(kinds) == 1 else rng.integers(0, len(kinds),
                                                                                                   len(chosen))
                for j, kind in enumerate(kinds):
                    sel = emu & (pick == j)
                    if sel.any():
                        fc = emulate(lw.observed(x[sel], miss[sel]), pos, s.forecast_leads, rng, kind=kind)
                        x, miss = lw.put(x, miss, pos, fc, sel)
                done |= emu
        return x, miss, done

    def _describe_batch(self, bb, ss) -> str:
        d, L = self.train_data, self.s.seq_len
        parts = []
        for b, s0 in list(zip(bb, ss))[:3]:
            rec = d.records[b]
            first = rec.dates[0] + np.timedelta64(int(s0), "D")
            parts.append(f"basin {rec.basin} {first}..{first + np.timedelta64(L - 1, 'D')}")
        return ", ".join(parts) + (" ..." if len(bb) > 3 else "")

    def timed_fit(self) -> tuple[dict, float, bool]:
        """:meth:`fit`, with the run's training time: ``(history, seconds, trained)``. A resumed run's time is its
        interrupted epochs' seconds (its saved history) plus this one's; ``trained`` is False where the resume
        trained no epoch (stopped after its last one), and then its time is the interrupted run's alone."""
        resumed = bool(self.history)
        before, epochs_before = sum(r.get("seconds", 0.0) for r in self.history), self.epoch
        t0 = time.time()
        result = self.fit()
        trained = self.epoch > epochs_before or not resumed
        return result, before + (time.time() - t0 if trained else 0.0), trained

    def fit(self) -> dict:
        """Run until ``epochs`` or early stopping; restore the best weights. Returns the history."""
        s = self.s
        if s.time_budget_s is not None:
            self.deadline = time.time() + s.time_budget_s
        if self.rank == 0 and self.epoch < s.epochs and self.bad_epochs < s.patience:
            # the epoch lines are terse; a hydrologist reading them for the first time needs their key once
            log.info("epoch lines: losses are on standardised flow, lower is better (mse: squared error; issue-time: "
                     "the forecast windows, lead days: their days after the issue date; head: the quantile head); "
                     "val NSE/KGE: median over validation basins, 1 is perfect; '*': best so far, the weights kept")
        try:
            if self.epoch == 0 and not self.history:
                # Epoch 0 scores the starting weights: a fine-tune can then never end worse than it began.
                ev = self._validate()
                self._record(0, None, ev, self._validation_mixture(), 0.0)
                self._save_state()
            while self.epoch < s.epochs and self.bad_epochs < s.patience and time.time() < self.deadline:
                epoch = self.epoch + 1
                t0 = time.time()
                train = self._train_epoch(epoch)
                ev, mix = self._validate(), self._validation_mixture()
                crit = self._criterion(ev, mix)
                self.scheduler.step(crit if math.isfinite(crit) else math.inf)
                self.epoch = epoch
                self._record(epoch, train, ev, mix, time.time() - t0)
                self._save_state()
                if self.epoch_callback is not None:
                    self.epoch_callback(epoch, self.history[-1])
            if time.time() >= self.deadline:
                log.info("Time budget of %.0f s spent after epoch %d", s.time_budget_s, self.epoch)
            if self.bad_epochs >= s.patience:
                log.info("Early stopping: no validation improvement for %d epochs", s.patience)
        except KeyboardInterrupt:
            if self.rank == 0:
                # The command line prints the message as its one stderr line; the log file keeps it too.
                hint = f"the state after epoch {self.epoch} is saved in {self.state_path}; rerun the same command with --resume added to continue"
                log.info("Interrupted: %s", hint, extra=FILE_ONLY)  # the CLI prints it on stderr
                raise KeyboardInterrupt(hint) from None
            raise
        self.model.load_state_dict(self.best_state)
        log.info("Best epoch %d: validation loss %.4f", self.best_epoch, self.best_val)
        return {"history": self.history, "best_epoch": self.best_epoch, "best_val": self.best_val}

    def _criterion(self, ev: EvalResult, mix: dict) -> float:
        """The validation loss that early stopping, the learning-rate schedule and the best epoch follow."""
        return mix["loss"] if self.s.validation_loss == "training_mixture" else ev.loss

    def _record(self, epoch: int, train: dict | None, ev: EvalResult, mix: dict, seconds: float) -> None:
        lr = self.optimizer.param_groups[0]["lr"]
        nan = float("nan")
        train = train or {"loss": nan, "mse": nan, "head": nan, "windows": 0, "batches": 0}  # epoch 0: none yet
        crit = self._criterion(ev, mix)
        row = {"epoch": epoch, "train_loss": train["loss"], "val_loss": crit,
               "train_mse": train["mse"], "train_head": train["head"],
               "train_windows": train["windows"], "train_batches": train["batches"],
               "val_mse": mix["mse"], "val_head": mix["head"], "val_mse_issue": mix["mse_issue"],
               "val_mse_leads": mix["mse_leads"],
               "val_mse_hindcast_windows": mix["mse_hindcast"], "val_hindcast_mse": ev.loss,
               "val_nse_median": ev.median("model", "nse"), "val_kge_median": ev.median("model", "kge"),
               "persistence_nse_median": ev.median("persistence", "nse"), "lr": lr, "seconds": seconds}
        self.history.append(row)
        improved = math.isfinite(crit) and crit < self.best_val
        if improved:
            self.best_val, self.best_epoch = crit, epoch
            self.best_state = copy.deepcopy(clean_state_dict(self.model.state_dict()))
            self.bad_epochs = 0
        elif epoch > 0:
            self.bad_epochs += 1
        if self.rank == 0:
            # epoch 0 scores the starting weights: no training pass, so no training loss to show
            train_txt = "-" if epoch == 0 else f"{train['loss']:.4f} (mse {train['mse']:.4f} + head {train['head']:.4f})"
            log.info("epoch %3d/%d  train %s  val %.4f (mse %.4f, issue-time %.4f, lead days %.4f, + head %.4f; "
                     "hindcast mse %.4f)  val NSE median %.3f KGE %.3f (persistence NSE %.3f)  lr %.1e  %.1f s%s%s",
                     epoch, self.s.epochs, train_txt, crit, mix["mse"], mix["mse_issue"], mix["mse_leads"],
                     mix["head"], ev.loss,
                     row["val_nse_median"], row["val_kge_median"], row["persistence_nse_median"], lr, seconds,
                     self._eta(epoch), "  *" if improved else "")

    def _eta(self, epoch: int) -> str:
        """``  ETA 7.5 min``: the mean epoch time so far times the epochs left until the maximum (early
        stopping may end sooner); empty before the first epoch and after the last."""
        times = [r["seconds"] for r in self.history if r["epoch"] > 0]
        left = self.s.epochs - epoch
        if not times or left <= 0:
            return ""
        return f"  ETA {left * float(np.mean(times)) / 60:.1f} min"
