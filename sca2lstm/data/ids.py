"""Basin ids: strings such as ``32006``, ``DE110000`` or ``my-gauge``, safe to use in file names.

An id names a timeseries file (``timeseries/<id>.csv``), a run folder (``basin_<id>``) and a
checkpoint (``best_model_basin_<id>.pth``), so it may hold only ASCII letters, digits, ``-`` and
``_``, start with a letter or a digit, and be at most 64 characters long: no ``/``, ``..`` or spaces.
"""

from __future__ import annotations

import re

from ..errors import UsageError

_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
ID_RULE = "ASCII letters, digits, '-' and '_' (starting with a letter or digit, at most 64), e.g. 32006 or DE110000"


def check_basin_id(value) -> str:
    """``value`` as a clean id string, or a UsageError naming it and the allowed characters."""
    s = str(value).strip()
    if not _ID.fullmatch(s):
        # an id copied from a spreadsheet cell that held it as a number (32006.0): name the id it stands for
        number = re.fullmatch(r"(\d+)\.0+", s)
        hint = (f"; {s} is the id {number.group(1)} written as a number with decimals (a spreadsheet's): give "
                f"{number.group(1)}, with its leading zeros if it has any" if number else "")
        raise UsageError(f"invalid station id {str(value)!r}: allowed are {ID_RULE}{hint}")
    return s
