"""Section 7, memory: peak RSS of preparing many synthetic basins in one process."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pandas as pd
from harness import Settings, _gb, run_isolated, show

def _generate_job(out_dir: str, n_basins: int) -> int:
    from sca2lstm.data.synthetic import generate_synthetic

    return len(generate_synthetic(out_dir, n_basins=n_basins, seed=42))


def _prepare_job(cfg_dict: dict, data_dir: str) -> dict:
    from sca2lstm.config import Config
    from sca2lstm.training.pretrain import prepare_pretraining_data

    prep = prepare_pretraining_data(Config.from_dict(cfg_dict), data_dir)
    d = prep.data
    return {"basins": len(prep.basins), "days": int(sum(len(r.dates) for r in d.records)),
            "array_bytes": int(d.x.nbytes + d.y.nbytes + sum(r.x.nbytes + r.y.nbytes for r in d.records))}


def _idle_job() -> None:
    """Imports what the other jobs import: the floor under every worker's peak RSS."""
    import sca2lstm.training.finetune  # noqa: F401
    import sca2lstm.training.pretrain  # noqa: F401


def section_memory(S: Settings) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="sca2lstm_bench_mem_"))
    try:
        _, t_gen, _ = run_isolated(S, "memory_generate", _generate_job, str(tmp / "data"), S.memory_basins)
        cfg = S.config({"data": {"data_dir": str(tmp / "data"), "cache_dir": str(tmp / "fresh_cache")}})
        prep, t_prep, rss = run_isolated(S, "memory_prepare", _prepare_job, cfg.to_dict(), str(tmp / "data"))
        _, _, rss_idle = run_isolated(S, "memory_idle", _idle_job)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    df = pd.DataFrame([{"basins": prep["basins"], "days": prep["days"], "generate_s": t_gen, "prepare_s": t_prep,
                        "peak_rss_GB": _gb(rss), "idle_worker_rss_GB": _gb(rss_idle),
                        "arrays_GB": _gb(prep["array_bytes"])}])
    show(f"Memory: prepare_pretraining_data on {prep['basins']} synthetic basins x 45 years, fresh cache, one process "
         "(peak_rss = VmHWM of that process; idle = a worker that only imports the package)", df)
    return {"tables": {"memory": df}, "summary": {}}
