"""Token verification: claims, pinned algorithm, refusals (``auth.tokens``)."""

from __future__ import annotations

import base64
import json
import time
import warnings

import jwt
import pytest

from attendance_live.auth.tokens import TokenError, TokenService

SECRET = "s" * 40


def _b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


class TestTokens:
    service = TokenService(SECRET)

    def test_sub_then_uid(self) -> None:
        exp = int(time.time()) + 60
        with_sub = jwt.encode({"sub": "a", "uid": "b", "exp": exp}, SECRET, algorithm="HS256")
        with_uid = jwt.encode({"uid": 77, "exp": exp}, SECRET, algorithm="HS256")
        assert self.service.verify(with_sub).user_id == "a"
        assert self.service.verify(with_uid).user_id == "77"

    def test_role_defaults_and_unknown_roles_are_students(self) -> None:
        exp = int(time.time()) + 60
        for role in (None, "superuser", 5):
            claims = {"sub": "x", "exp": exp, **({"role": role} if role is not None else {})}
            assert self.service.verify(jwt.encode(claims, SECRET, algorithm="HS256")).role == "student"

    @pytest.mark.parametrize(
        ("claims", "message"),
        [
            ({"sub": "x"}, "Invalid token"),  # no exp
            ({"exp": 9999999999}, "Invalid token"),  # no subject
            ({"sub": "x" * 200, "exp": 9999999999}, "Invalid token"),
            ({"sub": "x", "exp": 1}, "Token expired"),
        ],
    )
    def test_refused_claims(self, claims: dict[str, object], message: str) -> None:
        with pytest.raises(TokenError) as caught:
            self.service.verify(jwt.encode(claims, SECRET, algorithm="HS256"))
        assert caught.value.message == message

    def test_algorithm_is_pinned(self) -> None:
        claims = {"sub": "x", "exp": int(time.time()) + 60}
        none = f"{_b64({'alg': 'none'})}.{_b64(claims)}."
        with warnings.catch_warnings():  # PyJWT warns that this key is short for HS512
            warnings.simplefilter("ignore")
            hs512 = jwt.encode(claims, SECRET, algorithm="HS512")  # the right key, another algorithm
        for token in (none, hs512):
            with pytest.raises(TokenError, match="Invalid token"):
                self.service.verify(token)

    @pytest.mark.parametrize("token", [None, "", "   "])
    def test_missing(self, token: object) -> None:
        with pytest.raises(TokenError, match="Authentication required"):
            self.service.verify(token)


class TestVerifiedTokensKept:
    """A verified token is kept until its ``exp`` (static keys): reuse is cheap, expiry is not
    postponed, and nothing but a success is kept."""

    def test_a_kept_token_still_expires_at_its_exp(self) -> None:
        now = [1_900_000_000.0]
        service = TokenService(SECRET, clock=lambda: now[0])
        exp = now[0] + 1.5  # a number, not an integer: allowed
        token = jwt.encode({"sub": "kept", "exp": exp}, SECRET, algorithm="HS256")
        first = service.verify(token)
        assert first.user_id == "kept"
        now[0] = exp - 0.001  # kept up to its last moment
        assert service.verify(token) == first
        now[0] = exp  # expired at exp, as PyJWT has it
        with pytest.raises(TokenError) as caught:
            service.verify(token)
        assert caught.value.message == "Token expired"

    def test_the_clock_decides_expiry_for_a_token_never_seen(self) -> None:
        now = [1_900_000_000.0]
        service = TokenService(SECRET, clock=lambda: now[0], leeway=2)
        token = jwt.encode({"sub": "late", "exp": int(now[0]) - 1}, SECRET, algorithm="HS256")
        assert service.verify(token).user_id == "late"  # within the leeway
        fresh = TokenService(SECRET, clock=lambda: now[0] + 1, leeway=2)
        with pytest.raises(TokenError, match="Token expired"):
            fresh.verify(token)

    async def test_each_token_keeps_its_own_identity_past_the_bound(self) -> None:
        service = TokenService(SECRET, verified_cache_size=2)
        exp = int(time.time()) + 60
        tokens = {
            user: jwt.encode({"sub": user, "role": role, "exp": exp}, SECRET, algorithm="HS256")
            for user, role in (("u1", "teacher"), ("u2", "student"), ("u3", "admin"))
        }
        for _ in range(2):
            for user, token in tokens.items():
                verified = await service.check(token)
                assert verified.identity.user_id == user
                assert verified.expires_at == exp
        assert [service.verify(t).role for t in tokens.values()] == ["teacher", "student", "admin"]

    def test_a_refused_token_is_refused_every_time(self) -> None:
        service = TokenService(SECRET)
        forged = jwt.encode({"sub": "x", "exp": int(time.time()) + 60}, "o" * 40, algorithm="HS256")
        for _ in range(2):
            with pytest.raises(TokenError, match="Invalid token"):
                service.verify(forged)

    def test_a_negative_bound_is_refused(self) -> None:
        with pytest.raises(ValueError, match="verified_cache_size must be 0"):
            TokenService(SECRET, verified_cache_size=-1)
