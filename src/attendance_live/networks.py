"""IP networks: parsing CIDR lists, matching an address, and finding the client behind proxies.

Used by the settings (``TRUSTED_PROXIES``), the service (a session's
``allowed_networks``) and the API edge (the check-in's client address).

The client address is the TCP peer's. ``X-Forwarded-For`` is believed only
when the peer is a trusted proxy, and then only as far as the chain of trusted
proxies goes: reading the header from the right, the first address that is not
a trusted proxy is the client (anything left of it was written by the client
and may be forged). An IPv4 address mapped into IPv6 (``::ffff:10.0.0.1``)
counts as the IPv4 address.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

__all__ = [
    "MAX_NETWORKS",
    "IPAddress",
    "IPNetwork",
    "client_address",
    "in_networks",
    "parse_address",
    "parse_networks",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

MAX_NETWORKS = 32


def parse_networks(values: Iterable[str], what: str) -> tuple[IPNetwork, ...]:
    """CIDR strings (``10.0.0.0/8``, ``2001:db8::/32``, or a single address) as networks.

    Raises ValueError: ``what`` (e.g. "allowed_networks entry"), the bad entry, the fix. Host bits set
    (``10.0.0.1/8``) are refused: they usually mean a typo.
    """
    networks: list[IPNetwork] = []
    for raw in values:
        text = raw.strip()
        try:
            networks.append(ipaddress.ip_network(text, strict=True))
        except ValueError as exc:
            raise ValueError(
                f"{what} {text[:60]!r} is not a network ({exc}); "
                "use CIDR notation such as 10.20.0.0/16 or 2001:db8::/48"
            ) from None
    return tuple(networks)


def parse_address(text: str) -> IPAddress | None:
    """An address as written in a peer or a header (an IPv4-mapped IPv6 one as IPv4); None if not one."""
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def in_networks(address: IPAddress, networks: Sequence[IPNetwork]) -> bool:
    return any(address.version == net.version and address in net for net in networks)


def client_address(
    peer: str | None, forwarded_for: Sequence[str], trusted: Sequence[IPNetwork]
) -> IPAddress | None:
    """The client's address: the peer, or the right-most untrusted ``X-Forwarded-For`` entry.

    ``forwarded_for`` holds every ``X-Forwarded-For`` header value, in order.
    None when the peer is unknown, or when the entry that names the client is
    not an address (the chain cannot be trusted past it).
    """
    address = parse_address(peer) if peer else None
    if address is None or not in_networks(address, trusted):
        return address
    hops = [hop.strip() for value in forwarded_for for hop in value.split(",") if hop.strip()]
    for hop in reversed(hops):
        address = parse_address(hop)
        if address is None or not in_networks(address, trusted):
            return address
    # Every hop was a trusted proxy: the left-most one is as far as we can see.
    return address
