"""Progress bars fit for a terminal and for a log file."""

from __future__ import annotations

import sys
from typing import Any

from tqdm import tqdm

# A log file gets one line at most this often; a terminal is redrawn as usual.
LOG_INTERVAL_S = 30.0


def progress_bar(*, enabled: bool = True, **options: Any) -> tqdm:
    """A tqdm bar that redraws freely on a terminal and writes at most one line every 30 s to a file."""
    if not sys.stderr.isatty():
        options = {**options, "mininterval": LOG_INTERVAL_S, "maxinterval": LOG_INTERVAL_S}
    return tqdm(disable=not enabled, **options)
