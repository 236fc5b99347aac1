"""What the service's error answers say to a client: one line, without the server's file paths.

The errors of the library name the files they read by their full path, which helps whoever runs the
service (the log keeps them whole) but tells a client how the server's disk is laid out. An answer
names the file by its name alone.
"""

from __future__ import annotations

import re

# An absolute path of two or more parts (not a URL's, a unit's "m3/s" or one of the service's own addresses, which
# the answers may name: "/stations/32006/levels"): the name of its last part is kept.
_ABS_PATH = re.compile(r"(?<![\w.~:/-])(?!/(?:stations|warnings|alerts|daily_issue|health|docs|openapi)\b)"
                       r"(?:/[^\s/'\"()\[\];,]+)+/([^\s/'\"()\[\];,]+)")


def one_line(text) -> str:
    """``text`` on one line (runs of white space, newlines included, as one space)."""
    return " ".join(str(text).split())


def public_detail(text) -> str:
    """``text`` as a client may read it: on one line, each absolute file path cut to its file name."""
    return _ABS_PATH.sub(lambda m: m.group(1), one_line(text))
