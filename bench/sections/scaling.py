"""Section 3b, more basins: test NSE of each basin when SCA2LSTM is pretrained on more and more basins."""

from __future__ import annotations

import numpy as np
import pandas as pd
from harness import HINDCAST_SETTING, Settings, _pretrain_job, metric, run_isolated, show, with_median_row

def scaling_groups(basins) -> dict:
    """Pretraining sets of growing size that cover every basin equally: each basin alone, each third of
    the sorted basins, each complement of a third (two thirds; every basin is in two of them) and all.
    {label: list of basin lists}."""
    basins = sorted(basins)
    thirds = [list(t) for t in np.array_split(basins, 3) if len(t)]
    return {"alone": [[b] for b in basins], "third": thirds,
            "two_thirds": [[b for b in basins if b not in t] for t in thirds if len(t) < len(basins)],
            "all": [basins]}


def section_scaling(S: Settings) -> dict:
    """Test NSE of each basin when SCA2LSTM is pretrained on more and more basins (default config):
    does the accuracy still grow with the number of basins, or has it levelled off?"""
    from sca2lstm.data import camels_gb

    cfg = S.config()
    groups = scaling_groups(camels_gb.list_basins(S.data_dir))
    scores = {label: {} for label in groups}          # label -> basin -> [NSE of each run that had it]
    sizes = {}
    for label, sets in groups.items():
        sizes[label] = len(sets[0])
        for i, members in enumerate(sets):
            r, _, _ = run_isolated(S, f"scaling_{label}_{i}", _pretrain_job, cfg.to_dict(),
                                   str(S.out / "scaling" / f"{label}_{i}.pth"), str(S.data_dir), members, False)
            for b, m in r["test"].items():
                scores[label].setdefault(b, []).append(metric(m, "model", "nse"))
    basins = sorted(scores["all"])
    table = pd.DataFrame([{"basin": b, **{f"{lab}_NSE": float(np.mean(scores[lab][b])) for lab in groups}}
                          for b in basins])
    mean_row = {"basin": "mean", **table.drop(columns="basin").mean().to_dict()}
    table = pd.concat([with_median_row(table), pd.DataFrame([mean_row])], ignore_index=True)
    show(f"More basins ({HINDCAST_SETTING}): SCA2LSTM test NSE of each basin when pretrained on it alone, with a third, with two "
         f"thirds (mean of the two runs that include it) and with all of them (pretraining set sizes "
         f"{', '.join(f'{k} {v}' for k, v in sizes.items())}; default config, seed {cfg.training.seed})", table)
    return {"tables": {"scaling": table}, "summary": {"set_sizes": sizes}}
