"""Where a connection really comes from, when it comes through trusted reverse proxies.

A reverse proxy (nginx, HAProxy, a load balancer) connects to the relay itself and names
the client in the ``X-Forwarded-For`` header: ``client, proxy1, proxy2``, each proxy
appending the address it received the request from. The header is believed only when the
direct peer is a trusted proxy, and then it is read from the right: addresses of trusted
proxies are skipped, and the first one that is not trusted is the client. (When every
address is trusted, the left-most one is.) So a client cannot pass itself off as someone
else by sending its own ``X-Forwarded-For`` through a proxy that appends to it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from twisted.internet.address import IPv4Address, IPv6Address, UNIXAddress

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

#: the entry of ``trusted_proxies`` that trusts every connection over a UNIX socket
UNIX = "unix"


def parse_trusted_proxy(entry: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | str:
    """One ``trusted_proxies`` entry: an IP address, a CIDR network, or ``"unix"``.

    Raises ``ValueError`` for anything else.
    """
    if not isinstance(entry, str):
        raise ValueError(f"an IP address or network is needed, got {entry!r}")
    if entry.strip().lower() == UNIX:
        return UNIX
    return ipaddress.ip_network(entry.strip(), strict=False)


def _parse_ip(text: str) -> IPAddress | None:
    text = text.strip()
    if text.startswith("[") and "]" in text:  # [2001:db8::1] or [2001:db8::1]:443
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:  # 192.0.2.1:443
        text = text.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _descriptor(address: IPAddress) -> str:
    # The same form as autobahn's peer descriptors ("tcp4:192.0.2.1:5000"), without the
    # port, which X-Forwarded-For does not carry.
    return f"tcp{address.version}:{address}"


class TrustedProxies:
    """The proxies whose ``X-Forwarded-For`` header is believed."""

    def __init__(self, entries: Iterable[str] = ()) -> None:
        parsed = [parse_trusted_proxy(entry) for entry in entries]
        self.unix = UNIX in parsed
        self.networks = tuple(entry for entry in parsed if not isinstance(entry, str))

    def __bool__(self) -> bool:
        return self.unix or bool(self.networks)

    def trusts_ip(self, address: IPAddress) -> bool:
        return any(address.version == network.version and address in network for network in self.networks)

    def trusts(self, peer: object) -> bool:
        """Is ``peer`` (a Twisted address of the direct peer) a trusted proxy?"""
        if isinstance(peer, (IPv4Address, IPv6Address)):
            address = _parse_ip(peer.host.split("%", 1)[0])  # drop an IPv6 zone
            return address is not None and self.trusts_ip(address)
        return isinstance(peer, UNIXAddress) and self.unix

    def forwarded_peer(self, peer: object, forwarded_for: str | None) -> str | None:
        """The peer descriptor (``tcp4:ADDRESS``) of the client a trusted proxy names in
        ``forwarded_for``, or None to keep the socket's address (untrusted direct peer, no
        header, or a header that does not parse)."""
        if not forwarded_for or not self or not self.trusts(peer):
            return None
        entries = [entry for entry in forwarded_for.split(",") if entry.strip()]
        addresses = [_parse_ip(entry) for entry in entries]
        if not addresses or None in addresses:
            return None
        for address in reversed(addresses):
            if not self.trusts_ip(address):  # type: ignore[arg-type]
                return _descriptor(address)  # type: ignore[arg-type]
        return _descriptor(addresses[0])  # type: ignore[arg-type]
