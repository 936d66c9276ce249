"""The relay's log output: ``--log-format text|json`` and ``--log-level``.

The router logs with ``twisted.logger`` events whose fields name what happened and to
whom: ``event`` (``join``, ``leave``, ``abort``, ``auth_failure``, ``protocol_error``,
``slow_consumer``, ``trace``, ...) and ``session_id``, ``realm``, ``authid``, ``peer``.
The ``text`` format is Twisted's usual line (time, namespace, message); ``json`` writes
one JSON object per line with ``time`` (ISO 8601, UTC), ``level``, ``namespace``,
``text`` (the formatted message), ``failure`` (a traceback, when there is one) and every
field of the event, for log shippers to index.

``python -m promisifier relay`` starts logging with :func:`start_logging`. Under twistd,
which starts logging itself, the two options set twistd's ``--logger`` to
:func:`twistd_observer`, which honours twistd's ``--logfile`` and ``--nodaemon`` (stdout
with ``-n`` and no log file); they cannot be combined with ``--logger`` or ``--syslog``.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from typing import IO, Any

import orjson
from twisted.logger import (
    FileLogObserver,
    FilteringLogObserver,
    ILogObserver,
    LogLevel,
    LogLevelFilterPredicate,
    formatEvent,
    globalLogBeginner,
    textFileLogObserver,
)
from twisted.python.failure import Failure

LOG_FORMATS = ("text", "json")
LOG_LEVELS = ("debug", "info", "warn", "error", "critical")
_ALIASES = {"warning": "warn", "fatal": "critical"}

#: keys of a twisted.logger event that the JSON line shows in its own way, or not at all
_INTERNAL = {
    "log_format",
    "log_level",
    "log_namespace",
    "log_time",
    "log_failure",
    "log_logger",
    "log_source",
    "log_io",
    "log_text",
    "log_system",
    "log_flattened",
    "log_trace",
    "log_legacy",
    "log_observer",
    "message",
    "format",
    "isError",
    "system",
    "time",
}


def parse_level(name: str) -> LogLevel:
    """``"info"`` -> ``LogLevel.info`` (also ``warning`` and ``fatal``); ValueError otherwise."""
    key = _ALIASES.get(name.lower(), name.lower())
    if key not in LOG_LEVELS:
        raise ValueError(f"unknown log level {name!r}; expected one of {', '.join(LOG_LEVELS)}")
    return LogLevel.levelWithName(key)


def _json_safe(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [_json_safe(item) for item in value]
    if isinstance(value, dict):
        return {str(key): _json_safe(item) for key, item in value.items()}
    if isinstance(value, bytes):
        return value.decode("utf-8", "backslashreplace")
    return repr(value)


def event_as_json(event: dict[str, Any]) -> bytes:
    """One log event as a line of JSON (ending in a newline)."""
    level = event.get("log_level")
    record: dict[str, Any] = {
        "time": datetime.fromtimestamp(event.get("log_time") or 0, UTC).isoformat(timespec="milliseconds"),
        "level": level.name if isinstance(level, type(LogLevel.info)) else str(level),
        "namespace": event.get("log_namespace"),
        "text": formatEvent(event),
    }
    failure = event.get("log_failure")
    if isinstance(failure, Failure):
        record["failure"] = failure.getTraceback()
    for key, value in event.items():
        if key not in _INTERNAL and not key.startswith("log_") and key not in record:
            record[key] = _json_safe(value)
    try:
        return orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE)
    except TypeError:  # e.g. an int beyond 64 bits
        return orjson.dumps(
            _json_safe({k: (v if isinstance(v, str) else repr(v)) for k, v in record.items()}),
            option=orjson.OPT_APPEND_NEWLINE,
        )


def json_lines_observer(out: IO[str]) -> ILogObserver:
    """Writes each event to ``out`` as one line of JSON."""
    return FileLogObserver(out, lambda event: event_as_json(event).decode("utf-8"))


def make_observer(log_format: str = "text", level: str = "info", out: IO[str] | None = None) -> ILogObserver:
    """An observer writing events of ``level`` and above to ``out`` (stdout) in ``log_format``."""
    if log_format not in LOG_FORMATS:
        raise ValueError(f"unknown log format {log_format!r}; expected one of {', '.join(LOG_FORMATS)}")
    out = out if out is not None else sys.stdout
    inner = json_lines_observer(out) if log_format == "json" else textFileLogObserver(out)
    return FilteringLogObserver(inner, [LogLevelFilterPredicate(defaultLogLevel=parse_level(level))])


def start_logging(log_format: str = "text", level: str = "info", out: IO[str] | None = None) -> ILogObserver:
    """Begin logging (the global log beginner) to ``out`` (stdout); returns the observer."""
    observer = make_observer(log_format, level, out)
    globalLogBeginner.beginLoggingTo([observer], redirectStandardIO=False)
    return observer


# -- twistd -------------------------------------------------------------------------------

#: (format, level, twistd's options) given by RelayOptions under twistd
_twistd: tuple[str, str, Any] | None = None

#: the dotted name given to twistd's --logger
TWISTD_LOGGER = "promisifier.relay.logging.twistd_observer"


def use_under_twistd(parent: Any, log_format: str, level: str) -> None:
    """Make twistd (whose parsed options are ``parent``) log in ``log_format`` at ``level``."""
    global _twistd
    if parent.get("logger"):
        raise ValueError("--log-format and --log-level cannot be combined with twistd's --logger")
    if parent.get("syslog"):
        raise ValueError("--log-format and --log-level cannot be combined with twistd's --syslog")
    _twistd = (log_format, level, parent)
    parent["logger"] = TWISTD_LOGGER


def twistd_observer() -> ILogObserver:
    """twistd's ``--logger``: the format and level of the relay's options, written where
    twistd would write (``--logfile``; stdout for ``-`` or ``-n`` without a log file)."""
    from twisted.python.logfile import LogFile

    log_format, level, parent = _twistd if _twistd is not None else ("text", "info", {})
    logfile = parent.get("logfile") if hasattr(parent, "get") else None
    nodaemon = parent.get("nodaemon") if hasattr(parent, "get") else True
    if logfile == "-" or (not logfile and nodaemon):
        out: IO[str] = sys.stdout
    else:
        out = LogFile.fromFullPath(logfile or "twistd.log")  # type: ignore[assignment]
    return make_observer(log_format, level, out)
