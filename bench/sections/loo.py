"""Section 3, leave-one-out: pretrain without a basin, then score it zero-shot, fine-tuned and trained
from scratch on its test period."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pandas as pd
from harness import HINDCAST_SETTING, Settings, metric, run_isolated, show

def _loo_job(cfg_dict: dict, basin: str, others: list, finetune_overrides: dict, data_dir: str,
             root: str) -> dict:
    """One held-out basin: pretrain on ``others``, then score zero-shot, fine-tuned and from-scratch
    models on the basin's TEST period with the prediction API (persistence on the same days)."""
    from sca2lstm.config import Config
    from sca2lstm.evaluation.predict import predict
    from sca2lstm.training.finetune import finetune
    from sca2lstm.training.pretrain import pretrain

    cfg = Config.from_dict(cfg_dict)
    d, root = cfg.data, Path(root)

    def test_metrics(ckpt):
        return predict(ckpt, basin, d.test_start, d.test_end, data_dir=data_dir).metrics

    pre = pretrain(cfg, root / "pretrained.pth", data_dir=data_dir, basins=others, progress=False)
    zero_shot = test_metrics(pre["checkpoint"])  # the basin's discharge scale from its training period
    t0 = time.perf_counter()
    ft = finetune(pre["checkpoint"], basin, finetune_overrides or None, data_dir=data_dir,
                  out_root=root / "finetune", progress=False)
    ft_wall = time.perf_counter() - t0
    fine_tuned = test_metrics(ft["checkpoint"])
    sc = pretrain(cfg, root / "scratch.pth", data_dir=data_dir, basins=[basin], progress=False)
    scratch = test_metrics(sc["checkpoint"])
    return {"zero_shot": zero_shot, "fine_tuned": fine_tuned, "scratch": scratch,
            "pretrain_s": pre["seconds"], "finetune_s": ft["seconds"], "finetune_wall_s": ft_wall,
            "scratch_s": sc["seconds"]}


def section_loo(S: Settings) -> dict:
    from sca2lstm.data import camels_gb

    cfg = S.config(S.loo_train_overrides)
    d = cfg.data
    all_basins = camels_gb.list_basins(S.data_dir)
    held_out = [b for b in S.loo_basins if b in all_basins]
    rows = []
    for b in held_out:
        root = S.out / "loo" / b
        shutil.rmtree(root, ignore_errors=True)
        others = [x for x in all_basins if x != b]
        r, _, _ = run_isolated(S, f"loo_{b}", _loo_job, cfg.to_dict(), b, others, S.finetune_overrides,
                               str(S.data_dir), str(root))
        zs, fm, sm = r["zero_shot"], r["fine_tuned"], r["scratch"]
        rows.append({"basin": b, "persistence_NSE": metric(zs, "persistence", "nse"),
                     "zero_shot_NSE": metric(zs, "model", "nse"), "fine_tuned_NSE": metric(fm, "model", "nse"),
                     "scratch_NSE": metric(sm, "model", "nse"),
                     "persistence_KGE": metric(zs, "persistence", "kge"), "zero_shot_KGE": metric(zs, "model", "kge"),
                     "fine_tuned_KGE": metric(fm, "model", "kge"), "scratch_KGE": metric(sm, "model", "kge"),
                     "test_days": int(zs["n_days"]), "pretrain_s": r["pretrain_s"], "finetune_s": r["finetune_s"],
                     "finetune_wall_s": r["finetune_wall_s"], "scratch_s": r["scratch_s"]})
    table = pd.DataFrame(rows)
    ft_desc = "guide defaults" if not S.finetune_overrides else f"overrides {S.finetune_overrides}"
    show(f"Leave-one-out ({HINDCAST_SETTING}; pretrained on the other {len(all_basins) - 1} basins; test period "
         f"{d.test_start}..{d.test_end}; fine-tune: {ft_desc})", table,
         "*_s: Trainer.fit seconds (incl. validation); finetune_wall_s: the whole finetune() call "
         "(loading, training, plots, report)")
    return {"tables": {"loo": table}, "summary": {"held_out": held_out, "finetune": ft_desc}}
