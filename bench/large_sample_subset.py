"""Write basins of the large sample (``camels_gb_large``) in the layout the package reads, for benchmarks.

The large sample holds gzip-compressed series with precipitation, temperature and discharge_spec only.
Until the package reads it directly, this writes a folder of plain CSVs with the columns the default
config needs: ``discharge_vol`` = discharge_spec x area / 86.4 (area from the topographic attributes)
and ``peti`` from temperature by Oudin's formula (extraterrestrial radiation at the gauge latitude),
multiplied by one factor fitted so that its mean equals the mean of the real ``peti`` of the sample
basins (``--sample_dir``) over the training period (1970-10-01..2000-09-30). The attribute files
are copied unchanged.

    python bench/large_sample_subset.py --large_dir ../shared/data/camels_gb_large \\
        --sample_dir ../shared/data/camels_gb --min_bfi 0.8 --out /tmp/large_bfi08
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sca2lstm.data.synthetic import _extraterrestrial

TRAIN_END = "2000-10-01"


def oudin_pet(dates: pd.Series, temperature: np.ndarray, lat: float) -> np.ndarray:
    """Oudin et al. (2005) PET in mm/d: Re / (lambda rho) * (T + 5) / 100 where T > -5, else 0."""
    re = _extraterrestrial(np.array([lat]), dates.dt.day_of_year.to_numpy())[:, 0]  # MJ m-2 d-1
    return np.where(temperature + 5 > 0, re / 2.45 * (temperature + 5) / 100, 0.0)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="bench/large_sample_subset.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--large_dir", required=True)
    p.add_argument("--sample_dir", required=True, help="CAMELS-GB folder with real peti (PET calibration)")
    p.add_argument("--basins", default=None, help="file of gauge ids, one per line")
    p.add_argument("--min_bfi", type=float, default=None, help="or: every basin with baseflow_index above this")
    p.add_argument("--out", required=True)
    a = p.parse_args(argv)
    large, sample, out = Path(a.large_dir), Path(a.sample_dir), Path(a.out)
    topo = pd.read_csv(large / "attributes" / "CAMELS_GB_topographic_attributes.csv",
                       dtype={"gauge_id": str}).set_index("gauge_id")
    files = {f.name.split("_")[4]: f for f in (large / "timeseries").glob("*.csv.gz")}
    if a.basins:
        ids = [s.strip() for s in Path(a.basins).read_text().split() if s.strip()]
    elif a.min_bfi is not None:
        hyd = pd.read_csv(large / "attributes" / "CAMELS_GB_hydrologic_attributes.csv", dtype={"gauge_id": str})
        ids = hyd.loc[hyd["baseflow_index"] > a.min_bfi, "gauge_id"].tolist()
    else:
        p.error("give --basins or --min_bfi")
    ids = [b for b in ids if b in files]
    ratios = []
    for f in sorted((sample / "timeseries").glob("*.csv")):
        b = f.name.split("_")[4]
        df = pd.read_csv(f, parse_dates=["date"])
        m = df["date"] < TRAIN_END
        ratios.append(df.loc[m, "peti"].mean()
                      / np.nanmean(oudin_pet(df.loc[m, "date"], df.loc[m, "temperature"].to_numpy(),
                                             topo.loc[b, "gauge_lat"])))
    k = float(np.mean(ratios))
    shutil.rmtree(out, ignore_errors=True)
    (out / "timeseries").mkdir(parents=True)
    shutil.copytree(large / "attributes", out / "attributes")
    for b in ids:
        df = pd.read_csv(files[b], parse_dates=["date"])
        df["peti"] = np.round(k * oudin_pet(df["date"], df["temperature"].to_numpy(), topo.loc[b, "gauge_lat"]), 2)
        df["discharge_vol"] = np.round(df["discharge_spec"] * topo.loc[b, "area"] / 86.4, 4)
        df["date"] = df["date"].dt.strftime("%Y-%m-%d")
        df.to_csv(out / "timeseries" / files[b].name[:-3], index=False)
    print(f"PET factor {k:.3f} (sample basins {np.round(ratios, 3).tolist()}); wrote {len(ids)} basins to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
