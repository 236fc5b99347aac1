"""How long `sca2lstm station import` takes on a township station's ten years of hourly water levels.

Writes a synthetic record (3,653 days x 24 hours: stage in m, two rain gauges) as a GBK CSV and as an
.xlsx, imports each with an 08:00 day and a rating curve, and prints the wall time of each import (one
run each, on this machine; the numbers are for orientation, not a test).

    PYTHONPATH=. python bench/station_import_speed.py
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd


def main() -> int:
    import openpyxl

    from sca2lstm.cli import main as cli

    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        idx = pd.date_range("2010-01-01 08:00", periods=3653 * 24, freq="h")
        rng = np.random.default_rng(0)
        df = pd.DataFrame({"时间": idx.strftime("%Y-%m-%d %H:%M"), "水位(m)": np.round(0.5 + rng.random(len(idx)), 3),
                           "雨量1": np.round(rng.gamma(0.1, 2, len(idx)), 1),
                           "雨量2": np.round(rng.gamma(0.1, 2, len(idx)), 1)})
        df.to_csv(d / "s.csv", index=False, encoding="gbk")
        wb = openpyxl.Workbook(write_only=True)
        ws = wb.create_sheet("data")
        ws.append(list(df.columns))
        for row in zip(idx.to_pydatetime(), *(df[c] for c in df.columns[1:])):
            ws.append(list(row))
        wb.save(d / "s.xlsx")
        flags = ["--map", "date=时间,stage=水位(m),precipitation=雨量1+雨量2", "--rating", "a=12.5,b=1.6,h0=0.15",
                 "--day_start", "08:00", "--quiet"]
        for name, sid in (("s.csv", "a"), ("s.xlsx", "b")):
            t = time.perf_counter()
            rc = cli.main(["station", "import", str(d / name), "--id", sid, "--out", str(d / "out"), *flags])
            print(f"{name:7s} rc={rc} {len(df)} hourly rows -> {len(df) // 24} days: {time.perf_counter() - t:.2f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
