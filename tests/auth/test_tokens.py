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
