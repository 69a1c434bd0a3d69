"""The private-network guard: which IP addresses a webhook may reach.

Pure functions over ``ipaddress`` objects. The transport applies them to the address it
actually connects to; the renderer applies them to hosts written as literal addresses so a
marketer hears about ``http://10.0.0.5/`` when saving, not at send time.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Ranges that are never a public endpoint. ``is_global`` covers most of them; the explicit
# list keeps the guard honest across Python versions and names what we refuse.
_BLOCKED_NETWORKS: tuple[IPNetwork, ...] = tuple(
    ipaddress.ip_network(cidr)
    for cidr in (
        "0.0.0.0/8",  # "this" network
        "10.0.0.0/8",  # private
        "100.64.0.0/10",  # shared address space (carrier-grade NAT)
        "127.0.0.0/8",  # loopback
        "169.254.0.0/16",  # link-local, cloud metadata
        "172.16.0.0/12",  # private
        "192.0.0.0/24",  # IETF protocol assignments
        "192.0.2.0/24",  # documentation
        "192.88.99.0/24",  # 6to4 relay anycast
        "192.168.0.0/16",  # private
        "198.18.0.0/15",  # benchmarking
        "198.51.100.0/24",  # documentation
        "203.0.113.0/24",  # documentation
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved, broadcast
        "::/128",  # unspecified
        "::1/128",  # loopback
        "64:ff9b::/96",  # NAT64 (embeds IPv4: judged by it, see embedded_ipv4)
        "64:ff9b:1::/48",  # local-use NAT64
        "100::/64",  # discard-only
        "2001::/23",  # IETF protocol assignments (Teredo 2001::/32: judged by its IPv4)
        "2001:db8::/32",  # documentation
        "2002::/16",  # 6to4 (embeds IPv4: judged by it)
        "fc00::/7",  # unique local
        "fe80::/10",  # link-local
        "fec0::/10",  # site-local (deprecated)
        "ff00::/8",  # multicast
    )
)


def parse_networks(value: str | Iterable[str] | None) -> tuple[IPNetwork, ...]:
    """Parse ``ALLOWED_NETWORKS`` (comma-separated CIDRs, or an iterable of them).

    Raises ``ValueError`` naming the bad entry.
    """
    if value is None:
        return ()
    items = value.split(",") if isinstance(value, str) else list(value)
    networks = []
    for item in items:
        item = item.strip()
        if not item:
            continue
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError as exc:
            raise ValueError(f"invalid network in ALLOWED_NETWORKS: {item!r}") from exc
    return tuple(networks)


_NAT64_WELL_KNOWN = ipaddress.ip_network("64:ff9b::/96")


def embedded_ipv4(address: IPAddress) -> tuple[ipaddress.IPv4Address, ...]:
    """The IPv4 addresses an IPv6 address stands for, which the guard judges it by.

    IPv4-mapped ``::ffff:a.b.c.d`` and IPv4-compatible ``::a.b.c.d`` (not ``::`` and
    ``::1``) are that IPv4 address; NAT64 ``64:ff9b::a.b.c.d`` is translated to it; 6to4
    ``2002:AABB:CCDD::/48`` routes to it; Teredo ``2001:0::/32`` carries its server and its
    (obfuscated) client address, and both must pass. Empty for any other address.
    """
    if not isinstance(address, ipaddress.IPv6Address):
        return ()
    if address.ipv4_mapped is not None:
        return (address.ipv4_mapped,)
    if address.teredo is not None:
        return address.teredo
    if address.sixtofour is not None:
        return (address.sixtofour,)
    packed = address.packed
    if address in _NAT64_WELL_KNOWN:
        return (ipaddress.IPv4Address(packed[12:]),)
    if packed[:12] == bytes(12) and packed[12:] not in (bytes(4), bytes(3) + b"\x01"):
        return (ipaddress.IPv4Address(packed[12:]),)  # deprecated IPv4-compatible form
    return ()


def canonical_address(address: IPAddress) -> IPAddress:
    """An IPv6 address that embeds one IPv4 address as that address (Teredo: its client)."""
    embedded = embedded_ipv4(address)
    return embedded[-1] if embedded else address


def is_public_address(address: IPAddress) -> bool:
    """True when ``address`` is a routable public unicast address; an IPv6 address that
    embeds IPv4 (:func:`embedded_ipv4`) is public when every embedded address is."""
    embedded = embedded_ipv4(address)
    if embedded:
        return all(_is_public(ipv4) for ipv4 in embedded)
    return _is_public(address)


def _is_public(address: IPAddress) -> bool:
    if any(address in net for net in _BLOCKED_NETWORKS if net.version == address.version):
        return False
    return address.is_global and not address.is_multicast


def is_address_allowed(address: IPAddress, allowed_networks: Iterable[IPNetwork] = ()) -> bool:
    """True when a webhook may connect to ``address``.

    Public addresses always may; anything else only inside one of ``allowed_networks``.
    An address that embeds IPv4 is judged by what it embeds: allowing ``127.0.0.0/8`` also
    allows ``::ffff:127.0.0.1``, and ``64:ff9b::10.0.0.1`` is as private as ``10.0.0.1``.
    """
    allowed_networks = tuple(allowed_networks)
    if _inside(address, allowed_networks):
        return True
    embedded = embedded_ipv4(address)
    if embedded:
        return all(_is_public(v4) or _inside(v4, allowed_networks) for v4 in embedded)
    return _is_public(address)


def _inside(address: IPAddress, networks: tuple[IPNetwork, ...]) -> bool:
    return any(address in network for network in networks if network.version == address.version)


def parse_host_literal(host: str) -> IPAddress | None:
    """The address a host name denotes literally, or None for a real name.

    Understands what resolvers understand: dotted quads, bracketed or bare IPv6, and the
    legacy integer, octal and hexadecimal IPv4 spellings (``2130706433``, ``0177.0.0.1``,
    ``0x7f.1``) that ``inet_aton`` accepts.
    """
    host = host.strip().rstrip(".")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    host = host.split("%", 1)[0]  # IPv6 zone id
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if not host or not all(ch in "0123456789abcdefxABCDEFX." for ch in host):
        return None
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except OSError:
        return None
