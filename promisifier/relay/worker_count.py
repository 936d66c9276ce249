"""How many worker processes ``--workers`` / ``workers =`` asks for."""

from __future__ import annotations

import os

#: the most workers one relay starts
MAX_WORKERS = 256


def parse_workers(value: object) -> int:
    """A number of workers from ``"auto"`` (one per CPU), an integer or its text; raises
    ``ValueError`` saying what is expected."""
    if value == "auto":
        return max(1, os.cpu_count() or 1)
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_WORKERS:
        shown = repr(value) if isinstance(value, str) else value
        raise ValueError(
            f'expected a number of processes from 1 to {MAX_WORKERS}, or "auto" (one per CPU), got {shown}'
        )
    return value
