"""The identity provider's signing keys, from its JWKS endpoint, cached.

PyJWT's ``PyJWKClient`` fetches and parses the set (with a timeout); it is
synchronous, so every fetch runs in a worker thread and the event loop keeps
serving everyone else. On top of it this module keeps what PyJWKClient does
not:

* **a rate limit on refetches.** A token whose ``kid`` is not in the set
  triggers one refetch (that is how a key rotation is picked up without a
  restart), but at most one fetch starts every ``min_interval`` seconds (30):
  a flood of made-up ``kid``\\ s costs the provider one request per window.
  Concurrent callers share the fetch in flight.
* **cached keys outliving an outage.** A failed fetch keeps the keys already
  known; ``state()`` says the provider is down (``/readyz`` shows it) and one
  warning is logged per outage, one info line when it is back.
* **a periodic reload** (``refresh_every``, 300 s) so a key the provider has
  withdrawn stops being accepted.

The clock is injectable, so tests drive the windows without sleeping.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import jwt

__all__ = ["MIN_REFETCH_INTERVAL", "JwksKeys", "JwksState"]

log = logging.getLogger(__name__)

MIN_REFETCH_INTERVAL: Final = 30.0


@dataclass(frozen=True, slots=True)
class JwksState:
    """What ``/readyz`` shows: ``text`` for people, ``usable`` for the status code."""

    text: str
    usable: bool


class JwksKeys:
    """Signing keys by ``kid`` for one algorithm, from ``url``."""

    def __init__(
        self,
        url: str,
        algorithm: str,
        *,
        timeout: float = 5.0,
        refresh_every: float = 300.0,
        min_interval: float = MIN_REFETCH_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
        fetcher: Callable[[], list[jwt.PyJWK]] | None = None,
        source: str = "JWKS_URL",
    ) -> None:
        self.url = url
        self.source = source  # the setting the keys come from, named in logs
        self.algorithm = algorithm
        self.refresh_every = refresh_every
        self.min_interval = min_interval
        self._clock = clock
        client = jwt.PyJWKClient(
            url,
            cache_keys=False,
            cache_jwk_set=False,
            timeout=timeout,
            headers={"Accept": "application/json"},
        )
        self._fetch_sync = fetcher or (lambda: client.get_signing_keys(refresh=True))
        self._keys: dict[str, Any] = {}
        self._last_attempt: float | None = None
        self._loaded_at: float | None = None
        self._failure: str | None = None
        self._in_flight: asyncio.Future[None] | None = None
        self._reloader: asyncio.Task[None] | None = None
        self.fetches = 0  # attempts started (for tests and the log)

    # ------------------------------------------------------------------ keys

    async def key_for(self, kid: str | None) -> Any | None:
        """The key for ``kid`` (refetching the set once if allowed), or None."""
        key = self._lookup(kid)
        if key is not None:
            return key
        if self._may_fetch():
            await self.refresh()
            return self._lookup(kid)
        if self._in_flight is not None:  # a fetch already under way: share it
            with contextlib.suppress(Exception):
                await asyncio.shield(self._in_flight)
            return self._lookup(kid)
        return None

    def _lookup(self, kid: str | None) -> Any | None:
        if kid is None:
            # Without a kid only an unambiguous set will do.
            return next(iter(self._keys.values())) if len(self._keys) == 1 else None
        return self._keys.get(kid)

    def _may_fetch(self) -> bool:
        if self._in_flight is not None:
            return False
        return self._last_attempt is None or self._clock() - self._last_attempt >= self.min_interval

    async def refresh(self) -> None:
        """Fetch the set now (or join the fetch in flight); keep the old keys on failure."""
        if self._in_flight is not None:
            await asyncio.shield(self._in_flight)
            return
        loop = asyncio.get_running_loop()
        self._in_flight = loop.create_future()
        self._last_attempt = self._clock()
        self.fetches += 1
        try:
            await self._fetch()
        finally:
            self._in_flight.set_result(None)
            self._in_flight = None

    async def _fetch(self) -> None:
        try:
            found = await asyncio.to_thread(self._fetch_sync)
        except (jwt.PyJWKClientError, jwt.PyJWKSetError, jwt.InvalidKeyError, OSError, ValueError) as exc:
            problem = f"{type(exc).__name__}: {str(exc)[:200]}"
            if self._failure is None:
                log.warning(
                    "%s %s could not be fetched (%s); %s",
                    self.source,
                    self.url,
                    problem,
                    f"the {len(self._keys)} cached keys stay in use"
                    if self._keys
                    else "no key is known, so no token can be verified until it answers",
                )
            self._failure = problem
            return
        keys = {k.key_id: k.key for k in found if k.key_id and k.algorithm_name == self.algorithm}
        if not keys:
            problem = f"the set holds no signing key for {self.algorithm} with a kid"
            if self._failure != problem:
                log.warning(
                    "%s %s: %s; the %d cached keys stay in use",
                    self.source,
                    self.url,
                    problem,
                    len(self._keys),
                )
            self._failure = problem
            return
        if self._failure is not None:
            log.info("%s %s answers again (%d keys)", self.source, self.url, len(keys))
        elif set(keys) != set(self._keys):
            log.info(
                "%s %s: %d signing keys (kids %s)", self.source, self.url, len(keys), ", ".join(sorted(keys))
            )
        self._keys = keys
        self._failure = None
        self._loaded_at = self._clock()

    # -------------------------------------------------------------- lifecycle

    def state(self) -> JwksState:
        if self._failure is None and self._keys:
            return JwksState("ok", True)
        if self._last_attempt is None:
            return JwksState("not fetched yet", False)
        if self._keys:
            text = f"degraded: provider unreachable ({self._failure}); {len(self._keys)} cached keys in use"
            return JwksState(text, True)
        return JwksState(f"down: {self._failure}; no key known", False)

    def start(self) -> None:
        """Load the set now and reload it every ``refresh_every`` seconds (retrying a failure
        every ``min_interval``) until ``close``."""
        if self._reloader is None:
            self._reloader = asyncio.create_task(self._reload_forever(), name="jwks-reload")

    async def _reload_forever(self) -> None:
        while True:
            await self.refresh()
            await asyncio.sleep(self.min_interval if self._failure is not None else self.refresh_every)

    async def close(self) -> None:
        if self._reloader is not None:
            self._reloader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reloader
            self._reloader = None
