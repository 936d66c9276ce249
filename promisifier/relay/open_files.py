"""The relay's limit on open files, raised to what the system allows.

Every connection is a file descriptor. Most systems start a process with a soft limit of
1,024 open files and a hard limit far higher (often 524,288 or 1,048,576): a relay left at
the soft limit refuses connections long before it runs out of memory. A process may raise
its own soft limit up to the hard one without privileges, so the relay does at start.
"""

from __future__ import annotations

import resource

from twisted.logger import Logger

log = Logger(namespace="promisifier.relay")


def raise_open_file_limit() -> tuple[int, int]:
    """Raise the soft limit on open files to the hard limit, logging the limit in force.

    Returns the (soft, hard) limits in force afterwards. A system that refuses the raise
    (an unlimited hard limit some systems do not accept as a soft one) keeps its limit,
    which is logged the same way.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    before = soft
    if soft != hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError) as error:
            log.warn(
                "promisifier relay: could not raise the open files limit from {soft} to {hard}: {error}",
                soft=soft,
                hard=hard,
                error=error,
            )
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    log.info(
        "promisifier relay: open files limit {soft} (was {before}, hard limit {hard})",
        soft=_shown(soft),
        before=_shown(before),
        hard=_shown(hard),
    )
    return soft, hard


def _shown(limit: int) -> str:
    return "unlimited" if limit == resource.RLIM_INFINITY else str(limit)
