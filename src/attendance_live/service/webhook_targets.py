"""Where a webhook may go: public addresses only (SSRF), unless ``WEBHOOK_ALLOWED_NETWORKS`` lists them.

Loopback, private, link-local and other non-global addresses are refused. ``check_target`` runs
when an endpoint is registered and again before every attempt; ``GuardedResolver`` is the HTTP
client's resolver, so the connection goes only to an address that passed the same check (a name
re-pointed between the check and the request is refused too). Used by ``service.webhooks``.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Sequence
from urllib.parse import urlsplit

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver

from attendance_live.networks import IPAddress, IPNetwork, in_networks, parse_address
from attendance_live.service.errors import InvalidInput

__all__ = ["GuardedResolver", "check_target"]


async def check_target(url: str, allowed: Sequence[IPNetwork]) -> None:
    """Refuse (InvalidInput) a URL that is not http(s) or whose host resolves to an address that is
    not public, unless ``allowed`` lists it."""
    parsed = urlsplit(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise InvalidInput(f"url {url[:100]!r} is not an http:// or https:// URL with a host")
    if parsed.username or parsed.password:
        raise InvalidInput("url carries a user name or password; authenticate with the signature instead")
    host = parsed.hostname
    literal = parse_address(host)
    if literal is not None:
        addresses = [literal]
    else:
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(
                host, parsed.port or (443 if parsed.scheme == "https" else 80), type=socket.SOCK_STREAM
            )
        except OSError as exc:
            raise InvalidInput(
                f"url host {host!r} does not resolve ({exc.strerror or exc}); check the name"
            ) from None
        addresses = [a for a in (parse_address(str(info[4][0])) for info in infos) if a is not None]
        if not addresses:
            raise InvalidInput(f"url host {host!r} does not resolve to an IP address; check the name")
    for address in addresses:
        if not _permitted(address, allowed):
            raise InvalidInput(
                f"url host {host!r} resolves to {address}, a loopback, private or reserved address; "
                "webhooks go to public addresses only, unless WEBHOOK_ALLOWED_NETWORKS lists that network"
            )


def _permitted(address: IPAddress, allowed: Sequence[IPNetwork]) -> bool:
    return address.is_global or in_networks(address, allowed)


class GuardedResolver(AbstractResolver):
    """The HTTP client's resolver: the system's answers, less the addresses a webhook may not reach.

    The connection is made to an address this resolver returned, so a name that is re-pointed at a
    private address between the check and the request (DNS rebinding) is refused as well.
    """

    def __init__(self, allowed: Sequence[IPNetwork]) -> None:
        self.allowed = tuple(allowed)
        self._inner = ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        kept = [
            r
            for r in results
            if (address := parse_address(r["host"])) is not None and _permitted(address, self.allowed)
        ]
        if not kept:
            raise OSError(f"{host} resolves to loopback, private or reserved addresses only")
        return kept

    async def close(self) -> None:
        await self._inner.close()
