"""The address of the client behind a request, for the check-in's network rules and audit.

The TCP peer (the ASGI scope's ``client``), or, when the peer is one of
``TRUSTED_PROXIES``, the right-most address of ``X-Forwarded-For`` that is not
(``networks.client_address``). uvicorn's own proxy-header handling is off
(``serve`` turns it off) so that this is the one rule.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

from starlette.types import Scope

from attendance_live.networks import IPNetwork, client_address

__all__ = ["address_of"]


def address_of(scope: Scope, trusted: Sequence[IPNetwork]) -> str | None:
    """The client's address as text (None when it cannot be told)."""
    client = scope.get("client")
    peer = client[0] if client else None
    if not trusted:  # the peer's own address: parsed once per distinct peer (a check-in's hot path)
        return _peer_text(peer) if peer else None
    forwarded = (
        [value.decode("latin-1") for name, value in scope.get("headers", ()) if name == b"x-forwarded-for"]
        if trusted
        else []
    )
    address = client_address(peer, forwarded, trusted)
    return None if address is None else str(address)


@functools.lru_cache(maxsize=4096)
def _peer_text(peer: str) -> str | None:
    address = client_address(peer, (), ())
    return None if address is None else str(address)
