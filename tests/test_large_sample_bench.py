"""bench/large_sample.py's pure parts: the seeded hold-out and the summary table (no large data needed)."""

import importlib
import sys

import numpy as np
import pandas as pd

from conftest import REPO


def _bench():
    if str(REPO / "bench") not in sys.path:
        sys.path.insert(0, str(REPO / "bench"))
    return importlib.import_module("large_sample")


def test_holdout_is_seeded_disjoint_and_a_tenth():
    bench = _bench()
    basins = [str(10000 + i) for i in range(598)]
    train, held = bench.holdout_split(basins, 0.1, 0)
    assert len(held) == 60 and len(train) == 538 and not set(train) & set(held)
    assert sorted(train + held) == sorted(basins)
    assert bench.holdout_split(basins, 0.1, 0) == (train, held)       # the same seed, the same basins
    assert bench.holdout_split(basins, 0.1, 1)[1] != held              # another seed, others
    assert bench.holdout_split(basins[:6], 0.1, 0)[1] != []            # at least one held out
    assert bench.holdout_split(basins, 0.0, 0) == (basins, [])


def test_summary_medians_quartiles_share_and_persistence():
    bench = _bench()
    nse = [0.95, 0.92, 0.85, 0.5]
    pers = [0.90, 0.93, 0.80, 0.6]
    df = pd.DataFrame({"group": "g", "model": "pretrained", "basin": list("abcd"), "n_days": 100,
                       "nse": nse, "kge": [0.9] * 4, "persistence_nse": pers, "persistence_kge": [0.8] * 4,
                       "error": ""})
    df = pd.concat([df, pd.DataFrame([{"group": "g", "model": "pretrained", "basin": "e", "error": "no data"}])])
    s = bench.summarise(df).set_index("forecast")
    m = s.loc["pretrained"]
    assert m["n_basins"] == 4  # the unscored basin is not counted
    assert np.isclose(m["nse_median"], np.median(nse)) and np.isclose(m["nse_q25"], np.quantile(nse, 0.25))
    assert np.isclose(m["share_nse_gt_0.9"], 0.5) and m["below_persistence"] == 2
    assert np.isclose(s.loc["persistence", "nse_median"], np.median(pers))
