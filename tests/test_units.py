"""Unit tests for the small pieces: tokens, settings, caches, codec, rate limit, redaction."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import time
import warnings

import jwt
import pytest

from attendance_live.auth.tokens import TokenError, TokenService
from attendance_live.config import ConfigError, load_settings, normalise_database_url
from attendance_live.logs import configure_logging, redact
from attendance_live.realtime.cluster import decode_event, encode_event
from attendance_live.realtime.payloads import PayloadError, require_id
from attendance_live.realtime.ratelimit import TokenBucket
from attendance_live.service.cache import Caches, CourseMembers
from attendance_live.service.events import EnrollmentChanged, RecordChanged, SessionEnded, SessionStarted

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


class TestSettings:
    def test_database_urls_normalised(self) -> None:
        assert normalise_database_url("sqlite:///x.db") == "sqlite+aiosqlite:///x.db"
        assert normalise_database_url("postgresql://u:p@h/db") == "postgresql+asyncpg://u:p@h/db"
        assert normalise_database_url("postgres://u:p@h/db") == "postgresql+asyncpg://u:p@h/db"
        with pytest.raises(ValueError, match="in-memory"):
            normalise_database_url("sqlite://")

    def test_cors_origins_from_a_comma_list(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("CORS_ORIGINS", "http://a.example, http://b.example")
        assert load_settings().cors_origins == ["http://a.example", "http://b.example"]

    def test_error_names_variable_and_fix_without_the_secret(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("ACCESS_TOKEN_SECRET", "hunter2")
        with pytest.raises(ConfigError) as caught:
            load_settings()
        text = str(caught.value)
        assert text.startswith("Configuration error: ACCESS_TOKEN_SECRET")
        assert "secrets.token_urlsafe" in text
        assert "hunter2" not in text


class TestCaches:
    async def test_a_change_during_a_load_is_not_hidden(self) -> None:
        caches = Caches()
        release = asyncio.Event()

        async def slow_load() -> CourseMembers:
            await release.wait()
            return CourseMembers("t", {"s1": "approved"})

        loading = asyncio.create_task(caches.members.get("c", slow_load))
        await asyncio.sleep(0)
        caches.apply(EnrollmentChanged("c", "s1", "rejected"))  # commits while loading
        release.set()
        assert (await loading) is not None
        # the stale load was not stored: the next lookup loads again
        calls = 0

        async def fresh() -> CourseMembers:
            nonlocal calls
            calls += 1
            return CourseMembers("t", {"s1": "rejected"})

        assert (await caches.members.get("c", fresh)) == CourseMembers("t", {"s1": "rejected"})
        assert calls == 1
        assert (await caches.members.get("c", fresh)) is not None
        assert calls == 1  # cached now

    def test_events_invalidate_what_they_change(self) -> None:
        caches = Caches()
        caches.snapshots._entries["c"] = (object(), time.monotonic())  # type: ignore[assignment]
        caches.apply(RecordChanged("c", "s", "u", False))
        assert "c" in caches.snapshots._entries  # studentCount did not move
        caches.apply(RecordChanged("c", "s", "u", True))
        assert "c" not in caches.snapshots._entries

    async def test_cluster_mode_does_not_cache_snapshots(self) -> None:
        caches = Caches.for_cluster()
        loads = 0

        async def load() -> CourseMembers:
            nonlocal loads
            loads += 1
            return CourseMembers("t", {})

        await caches.snapshots.get("c", load)  # type: ignore[arg-type]
        await caches.snapshots.get("c", load)  # type: ignore[arg-type]
        assert loads == 2


def test_event_codec_round_trip() -> None:
    for event in (
        SessionStarted("c", "s"),
        SessionEnded("c", "s"),
        RecordChanged("c", "s", "u", True),
        EnrollmentChanged("c", "u", "rejected"),
    ):
        assert decode_event(encode_event(event, "node-1")) == ("node-1", event)
    assert decode_event(b"not json") is None
    assert decode_event(b'{"type": "Nope", "origin": "x"}') is None


def test_token_bucket(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [100.0]
    monkeypatch.setattr(time, "monotonic", lambda: now[0])
    bucket = TokenBucket(rate=2, burst=3)
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]
    now[0] += 0.5  # one token back
    assert bucket.take()
    assert not bucket.take()
    assert bucket.should_warn()
    assert not bucket.should_warn()
    now[0] += 1.0
    assert bucket.should_warn()


@pytest.mark.parametrize(
    ("args", "says"),
    [
        ((), "needs a payload"),
        ((None,), "not null"),
        (([],), "not an array"),
        ((b"x",), "binary data"),
        (({"course_id": 1},), "(a number)"),
        (({},), "(missing)"),
        (({"course_id": "x" * 129},), "longer than 128"),
    ],
)
def test_payload_messages(args: tuple[object, ...], says: str) -> None:
    with pytest.raises(PayloadError, match=says.replace("(", r"\(").replace(")", r"\)")):
        require_id(args, "subscribeToCourse", "course_id")


def test_tokens_never_reach_the_log(capsys: pytest.CaptureFixture[str]) -> None:
    token = TokenService(SECRET).mint("someone", ttl_seconds=60)
    assert token not in redact(f"token={token}")
    assert "Bearer [redacted]" in redact("Authorization: Bearer abc.def")
    configure_logging("info", "json")
    logging.getLogger("attendance_live.test").warning("client sent %s", token)
    line = capsys.readouterr().err.strip().splitlines()[-1]
    entry = json.loads(line)
    assert entry["message"] == "client sent [redacted-jwt]"
    assert entry["level"] == "warning"
    configure_logging("warning", "text")
