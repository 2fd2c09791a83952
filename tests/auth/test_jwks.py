"""The provider's key set: rotation without restart, the refetch rate limit, outages.

A real JWKS endpoint on loopback (tests.auth.provider) and PyJWT's client;
the clock that paces refetches is the test's, so the 30 s windows pass
without sleeping.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid

import jwt
import pytest

from attendance_live.auth.jwks import JwksKeys
from attendance_live.auth.tokens import ClaimNames, TokenError, TokenService
from tests.auth.provider import SigningKey, keycloak_claims, serve_jwks

ISSUER = "https://login.uni.example/realms/uni"


class Ticker:
    """A monotonic clock moved by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def service_for(url: str, algorithm: str, clock: Ticker) -> TokenService:
    return TokenService(
        algorithm=algorithm,
        jwks=JwksKeys(url, algorithm, timeout=2, clock=clock),
        issuer=ISSUER,
        audience=["attendance-live"],
        claims=ClaimNames(role="realm_access.roles"),
    )


def token(key: SigningKey, sub: str = "u1", **kw: object) -> str:
    return key.sign(keycloak_claims(ISSUER, roles=["teacher"], sub=sub), **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("algorithm", ["RS256", "ES256"])
async def test_a_rotation_is_picked_up_without_restart(algorithm: str) -> None:
    old, new = SigningKey.new(algorithm), SigningKey.new(algorithm)
    clock = Ticker()
    with serve_jwks(old) as provider:
        service = service_for(provider.url, algorithm, clock)
        first = await service.check(token(old))
        assert (first.identity.user_id, first.identity.role) == ("u1", "teacher")
        assert provider.requests == 1

        # The provider rolls its key over: both published, then only the new one.
        provider.rotate(old, new)
        clock.now += 31
        assert (await service.check(token(new, "u2"))).identity.user_id == "u2"
        assert provider.requests == 2  # one refetch, for the unknown kid
        assert (await service.check(token(old, "u3"))).identity.user_id == "u3"  # still published

        provider.rotate(new)
        clock.now += 31
        assert service.jwks is not None
        await service.jwks.refresh()  # the periodic reload
        with pytest.raises(TokenError, match="Invalid token"):
            await service.check(token(old))  # withdrawn by the provider: no longer accepted
        assert (await service.check(token(new, "u4"))).identity.user_id == "u4"


async def test_an_unknown_kid_flood_costs_one_fetch_per_30_seconds() -> None:
    key = SigningKey.new("RS256")
    clock = Ticker()
    with serve_jwks(key) as provider:
        service = service_for(provider.url, "RS256", clock)
        await service.check(token(key))
        assert provider.requests == 1
        clock.now += 30  # the window since the first fetch has passed

        async def forged() -> None:
            with pytest.raises(TokenError, match="Invalid token"):
                await service.check(token(key, kid=f"made-up-{uuid.uuid4().hex}"))

        await asyncio.gather(*(forged() for _ in range(50)))  # concurrently: they share the fetch
        for _ in range(50):  # and one after another, in the same window
            await forged()
        assert provider.requests == 2

        clock.now += 29.9
        await forged()
        assert provider.requests == 2  # still within 30 s of the last fetch
        clock.now += 0.1
        await forged()
        await forged()
        assert provider.requests == 3  # a new window: one more fetch, and only one
        # The real key kept working throughout.
        assert (await service.check(token(key, "still"))).identity.user_id == "still"


async def test_provider_down_cached_keys_keep_working(caplog: pytest.LogCaptureFixture) -> None:
    key = SigningKey.new("ES256")
    clock = Ticker()
    with serve_jwks(key) as provider:
        service = service_for(provider.url, "ES256", clock)
        jwks = service.jwks
        assert jwks is not None
        await service.check(token(key))
        assert jwks.state().text == "ok"

        provider.down()
        clock.now += 31
        with caplog.at_level(logging.WARNING, logger="attendance_live.auth.jwks"):
            await jwks.refresh()
        state = jwks.state()
        assert state.usable
        assert state.text.startswith("degraded: provider unreachable")
        assert "1 cached keys in use" in state.text
        assert any(
            "could not be fetched" in r.getMessage() and "cached keys stay in use" in r.getMessage()
            for r in caplog.records
        )
        assert (await service.check(token(key, "during-outage"))).identity.user_id == "during-outage"

        provider.down(False)
        clock.now += 31
        await jwks.refresh()
        assert jwks.state().text == "ok"


async def test_a_provider_never_reached_leaves_no_key_and_says_so() -> None:
    key = SigningKey.new("RS256")
    with serve_jwks(key) as provider:
        provider.down()
        service = service_for(provider.url, "RS256", Ticker())
        assert service.jwks is not None
        assert service.jwks.state().text == "not fetched yet"
        with pytest.raises(TokenError, match="Invalid token"):
            await service.check(token(key))
        state = service.jwks.state()
        assert not state.usable
        assert state.text.startswith("down:")


async def test_the_fetch_does_not_block_the_event_loop() -> None:
    """PyJWKClient is synchronous: while a slow provider answers, the loop keeps running."""
    release = asyncio.Event()
    ticks = 0

    key = SigningKey.new("RS256")
    loop = asyncio.get_running_loop()

    def slow_fetch() -> list[jwt.PyJWK]:
        asyncio.run_coroutine_threadsafe(release.wait(), loop).result(timeout=5)
        return [jwt.PyJWK(key.jwk())]

    service = TokenService(
        algorithm="RS256", jwks=JwksKeys("https://unused.example/certs", "RS256", fetcher=slow_fetch)
    )
    checking = asyncio.create_task(service.check(token(key)))
    while ticks < 3:  # the loop runs other work while the fetch waits in its thread
        await asyncio.sleep(0)
        ticks += 1
    assert not checking.done()
    release.set()
    assert (await checking).identity.user_id == "u1"


async def test_jwks_reload_task_starts_and_stops() -> None:
    key = SigningKey.new("EdDSA")
    with serve_jwks(key) as provider:
        jwks = JwksKeys(provider.url, "EdDSA", timeout=2)
        service = TokenService(algorithm="EdDSA", jwks=jwks)
        service.start()
        deadline = time.monotonic() + 5
        while jwks.state().text != "ok":
            assert time.monotonic() < deadline, jwks.state()
            await asyncio.sleep(0.02)
        await service.close()
        assert (await service.check(key.sign({"sub": "e", "exp": time.time() + 60}))).identity.user_id == "e"
