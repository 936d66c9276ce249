"""Twisted server endpoint strings, as the relay's listeners use them.

``tcp:8080:interface=127.0.0.1``, ``tcp6:8080:interface=\\:\\:1``,
``ssl:8443:privateKey=key.pem:certKey=cert.pem``, ``unix:/run/relay.sock``: a type, then
``:``-separated arguments, positional or ``name=value``; a backslash escapes the next
character. Twisted parses them itself (``serverFromString``); the helpers here only look
at what the relay needs to know before listening: which files a TLS listener reads (to
check they exist and to resolve them against the config file's folder), whether it
listens on loopback only, and whether clients use ``wss://``.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass

#: endpoint types a listener may use
LISTENER_TYPES = ("tcp", "tcp6", "ssl", "unix")

#: the listen backlog of a listener whose endpoint string names none (the kernel caps it at
#: ``net.core.somaxconn``). Twisted's own default, 50, overflows when a few hundred clients
#: connect at once (a relay restart, a burst of reconnects): the kernel then drops the
#: client's final ACK, and the client, which thinks it is connected, waits for TCP
#: retransmissions, seconds each, before its opening handshake even reaches the relay.
DEFAULT_BACKLOG = 1024

#: endpoint types that take a ``backlog`` argument
_BACKLOG_TYPES = ("tcp", "tcp6", "ssl", "unix")

#: ssl: arguments that name files read when listening
TLS_FILE_ARGUMENTS = ("privateKey", "certKey", "extraCertChain", "dhParameters")


@dataclass(frozen=True)
class EndpointDescription:
    """An endpoint string taken apart."""

    kind: str
    args: tuple[str, ...]
    kwargs: tuple[tuple[str, str], ...]

    @property
    def options(self) -> dict[str, str]:
        return dict(self.kwargs)

    def __str__(self) -> str:
        parts = [_escape(self.kind), *(_escape(arg) for arg in self.args)]
        parts += [f"{_escape(name)}={_escape(value)}" for name, value in self.kwargs]
        return ":".join(parts)


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace(":", "\\:").replace("=", "\\=")


def _split(text: str, separator: str, limit: int = -1) -> list[str]:
    """Split at unescaped ``separator``, keeping escapes in the parts."""
    parts: list[str] = []
    current: list[str] = []
    chars = iter(text)
    for char in chars:
        if char == "\\":
            current.append(char)
            current.append(next(chars, ""))
        elif char == separator and limit != 0:
            parts.append("".join(current))
            current = []
            limit -= 1
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


def _unescape(text: str) -> str:
    out: list[str] = []
    chars = iter(text)
    for char in chars:
        out.append(next(chars, "") if char == "\\" else char)
    return "".join(out)


def parse_endpoint(description: str) -> EndpointDescription:
    """Take an endpoint string apart (no check of the type or the arguments)."""
    kind, *rest = _split(description, ":")
    args: list[str] = []
    kwargs: list[tuple[str, str]] = []
    for part in rest:
        pieces = _split(part, "=", 1)
        if len(pieces) == 2:
            kwargs.append((_unescape(pieces[0]), _unescape(pieces[1])))
        else:
            args.append(_unescape(part))
    return EndpointDescription(_unescape(kind).strip().lower(), tuple(args), tuple(kwargs))


def with_backlog(description: str, backlog: int = DEFAULT_BACKLOG) -> str:
    """``description`` with ``backlog=`` added when it is a tcp, tcp6, ssl or unix
    endpoint that names none (see :data:`DEFAULT_BACKLOG`); any other string unchanged."""
    parsed = parse_endpoint(description)
    if parsed.kind not in _BACKLOG_TYPES or "backlog" in parsed.options:
        return description
    return f"{description}:backlog={backlog}"


def tls_files(description: EndpointDescription) -> list[tuple[str, str]]:
    """(argument, file name) of each file an ``ssl:`` endpoint reads; certKey defaults to
    privateKey, as in Twisted."""
    if description.kind != "ssl":
        return []
    options = description.options
    files = [(name, options[name]) for name in TLS_FILE_ARGUMENTS if options.get(name)]
    if "privateKey" in options and "certKey" not in options:
        files.append(("certKey", options["privateKey"]))
    return files


def resolve_files(description: EndpointDescription, base_dir: str) -> EndpointDescription:
    """``description`` with relative file names (TLS files, UNIX socket path) made
    absolute against ``base_dir``."""

    def resolve(name: str) -> str:
        return name if os.path.isabs(name) else os.path.normpath(os.path.join(base_dir, name))

    args, kwargs = list(description.args), list(description.kwargs)
    if description.kind == "unix":
        if args:
            args[0] = resolve(args[0])
        kwargs = [(k, resolve(v) if k == "address" else v) for k, v in kwargs]
    elif description.kind == "ssl":
        kwargs = [(k, resolve(v) if k in TLS_FILE_ARGUMENTS and v else v) for k, v in kwargs]
    return EndpointDescription(description.kind, tuple(args), tuple(kwargs))


def is_loopback(description: EndpointDescription) -> bool:
    """True when only this machine can connect (a loopback interface, or a UNIX socket)."""
    if description.kind == "unix":
        return True
    interface = description.options.get("interface", "")
    if interface.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(interface.split("%", 1)[0]).is_loopback
    except ValueError:  # "" (every interface) or a name
        return False


def is_secure(description: str | EndpointDescription) -> bool:
    """True when clients connect with TLS (``wss://``)."""
    if isinstance(description, str):
        description = parse_endpoint(description)
    return description.kind == "ssl"


def type_hint(description: str) -> str:
    """What the user most likely meant by an endpoint string whose type is not one a
    listener may use, e.g. ``8089`` or ``127.0.0.1:8089`` ("" when there is no guess)."""
    text = description.strip()
    if text.isdigit():
        return (
            f"a port alone is not an endpoint string: write tcp:{text} (every interface)"
            f" or tcp:{text}:interface=127.0.0.1 (this machine only)"
        )
    host, _, port = text.rpartition(":")
    if port.isdigit() and _is_address(host):
        return f"write tcp:{port}:interface={host}"
    return ""


def _is_address(host: str) -> bool:
    try:
        return isinstance(ipaddress.ip_address(host), ipaddress.IPv4Address)
    except ValueError:
        return host == "localhost"


def cannot_listen(error: Exception) -> str:
    """One line saying why listening failed, e.g. ``cannot listen on 127.0.0.1:8080:
    address already in use`` (``error`` is Twisted's ``CannotListenError``, or any other
    exception an endpoint raised)."""
    import errno

    from twisted.internet.error import CannotListenError

    if not isinstance(error, CannotListenError):
        return f"cannot listen: {' '.join(str(error).split()) or type(error).__name__}"
    if isinstance(error.port, str):  # a UNIX socket's path
        where = error.port
    else:
        host = error.interface or "0.0.0.0"
        where = f"[{host}]:{error.port}" if ":" in host else f"{host}:{error.port}"
    reason = error.socketError
    code = getattr(reason, "errno", None)
    if code == errno.EADDRINUSE:
        why = "address already in use"
    elif code == errno.EACCES:
        why = "permission denied" + ("" if isinstance(error.port, str) else " (ports below 1024 need root)")
    elif code == errno.EADDRNOTAVAIL:
        why = "no such address on this machine"
    else:
        why = (getattr(reason, "strerror", None) or str(reason)).lower()
    return f"cannot listen on {where}: {why}"
