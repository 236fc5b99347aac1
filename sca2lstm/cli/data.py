"""``sca2lstm data``: data tools.

``sca2lstm data synth --out DIR --basins N [--seed S] [--start D --end D]`` writes a synthetic dataset
in the CAMELS-GB layout (GR4J driven by a stochastic weather generator; see
:mod:`sca2lstm.data.synthetic`). ``sca2lstm data check --data_dir DIR`` reads every basin and reports; each unusable one is a line
with its reason, and any makes the exit code 1.
"""

from __future__ import annotations

import sys
import time

from ..errors import DataError, UsageError
from .common import ArgumentParser, iso_date, non_negative_int, one_line, output_folder, positive_int, run_main

PROG = "sca2lstm data"
#: Basin ids `data synth` lists after writing them; a longer list names these and counts the rest.
SHOWN_IDS = 20


#: command lines that --help ends with (tests parse each)
EXAMPLES = [
        'sca2lstm data synth --out ./synthetic_basins',
        'sca2lstm data check --data_dir ../shared/data/camels_gb',
]


def build_parser(prog: str = PROG) -> ArgumentParser:
    p = ArgumentParser(prog=prog, examples=EXAMPLES, description="Data tools.")
    sub = p.add_subparsers(dest="action", required=True)
    s = sub.add_parser("synth", help="write the built-in synthetic basins in the CAMELS-GB layout, marked as synthetic "
                       "(a model trained on them is refused on real data, and the reverse)")
    s.add_argument("--out", required=True, help="output folder (must be new or empty)")
    s.add_argument("--basins", type=positive_int, default=12, help="number of basins (default 12; 32006 is first)")
    s.add_argument("--seed", type=non_negative_int, default=42, help="random seed (default 42)")
    s.add_argument("--start", type=iso_date, default="1970-10-01", help="first day (default 1970-10-01)")
    s.add_argument("--end", type=iso_date, default="2015-09-30", help="last day (default 2015-09-30)")
    c = sub.add_parser("check", help="read every basin of a dataset and summarise it; each unusable basin is "
                       "listed with its reason, and any makes the exit code 1")
    c.add_argument("--data_dir", default=None, help="CAMELS-GB folder (default: as for training)")
    for q in (s, c):
        q.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    return p


def _body(args) -> int:
    if args.action == "synth":
        from ..data.synthetic import generate_synthetic
        if args.start > args.end:  # a usage error (exit 2), as for every other command's --start/--end
            raise UsageError(f"--start {args.start} is after --end {args.end}")
        output_folder(args.out, "--out")  # a file in the way named as such, not the system's 'File exists'
        t0 = time.time()
        ids = generate_synthetic(args.out, n_basins=args.basins, seed=args.seed, start=args.start, end=args.end,
                                 marked_by=f"`sca2lstm data synth` (seed {args.seed})")
        # Every id up to a screenful; beyond it the first ones (the rest are in timeseries/ and the attributes).
        shown = " ".join(ids) if len(ids) <= SHOWN_IDS else f"{' '.join(ids[:SHOWN_IDS])} ... ({len(ids) - SHOWN_IDS} more)"
        print(f"Wrote {len(ids)} synthetic basins to {args.out} in {time.time() - t0:.1f} s: {shown}")
        return 0
    import numpy as np

    from ..config import load_config
    from ..data import reader
    from ..data.dataset import load_basins, resolve_data_dir
    from ..data.periods import require_usable
    from ..data.station_meta import read_station_meta
    cfg = load_config()
    data_dir, _ = resolve_data_dir(args.data_dir, cfg)
    basins = reader.list_basins(data_dir)
    t0 = time.time()
    # Every basin is read, whatever the others hold: one damaged file must not hide the next one.
    loaded = load_basins(data_dir, basins, cfg, skip_bad=True, progress=True)   # a bar on a terminal only
    for i, r in enumerate(loaded):
        if not isinstance(r, DataError):
            try:
                r.require_flows(reader.timeseries_file(data_dir, r.basin))
                # readable, but too short for any command: pretraining leaves it out, fine-tuning and
                # prediction refuse it (an imported station's periods follow its own record, as theirs do)
                meta = read_station_meta(data_dir, r.basin)
                until = (meta.provenance.get("record") or {}).get("end") if meta.imported else None
                require_usable(r, cfg, own_record=meta.imported, split_until=until)
            except DataError as e:  # readable, but no command can use it
                loaded[i] = e
    recs = [r for r in loaded if not isinstance(r, DataError)]
    bad = [(b, r) for b, r in zip(basins, loaded) if isinstance(r, DataError)]
    print(f"{data_dir}: {len(basins)} basins checked in {time.time() - t0:.2f} s")
    print(f"{'basin':>8} {'first':>10} {'last':>10} {'days':>6} {'Q missing':>9}")
    for r in recs:
        print(f"{r.basin:>8} {str(r.dates[0]):>10} {str(r.dates[-1]):>10} {len(r.dates):6d} "
              f"{int(np.isnan(r.y).sum()):9d}")
    for b, e in bad:
        print(f"{b:>8} bad: {one_line(e)}")
    print(f"{len(recs)} of {len(basins)} basins usable, {len(bad)} bad")
    if bad:
        sys.stderr.write(f"{PROG}: error: {len(bad)} of {len(basins)} basins cannot be used: "
                         f"{', '.join(b for b, _ in bad)}\n")
        return 1
    return 0


def main(argv=None, prog: str = PROG) -> int:
    return run_main(prog, _body, build_parser(prog), argv)
