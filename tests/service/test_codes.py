"""Rotating codes (service.codes): derivation, the step edges, the grace boundary, other secrets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from attendance_live.service.codes import (
    ALPHABET,
    CODE_LENGTH,
    code_at,
    code_for_step,
    new_secret,
    normalise_code,
    verify_code,
)

START = datetime(2026, 3, 2, 9, 0, 0, tzinfo=UTC)
SECRET = "ab" * 32
PERIOD = 15
GRACE = 5.0


def at(ms: int) -> datetime:
    return START + timedelta(milliseconds=ms)


def ok(code: str, now_ms: int, *, secret: str = SECRET) -> bool:
    return verify_code(secret, START, PERIOD, GRACE, at(now_ms), code)


# Known answers for the documented derivation, computed outside this code base (openssl dgst
# -sha256 -mac HMAC over the step as 8 big-endian bytes; the digest's first 8 bytes as a
# big-endian number, written in base 19 over ALPHABET, least significant digit first). A change
# of hash, byte order, alphabet or digit order fails here.
KEY = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"


@pytest.mark.parametrize(
    ("secret", "step", "code"),
    [
        (KEY, 0, "9346M4"),
        (KEY, 1, "97NM39"),
        (KEY, 4242, "EWCMNY"),
        (SECRET, 7, "N73T76"),
    ],
)
def test_known_answers(secret: str, step: int, code: str) -> None:
    assert code_for_step(secret, step) == code


def test_the_code_in_force_is_the_known_answer_of_its_step() -> None:
    now = code_at(SECRET, START, PERIOD, at(7 * PERIOD * 1000 + 1))
    assert (now.step, now.code) == (7, "N73T76")
    assert now.expires_at == at(8 * PERIOD * 1000)
    assert ALPHABET == "34679ACEFHKMNPRTWXY"


def test_codes_are_six_characters_without_look_alikes() -> None:
    codes = {code_for_step(SECRET, step) for step in range(2000)}
    assert len(codes) > 1990  # distinct per step (a collision now and then is allowed)
    for code in codes:
        assert len(code) == CODE_LENGTH
        assert set(code) <= set(ALPHABET)
    for look_alike in "0O1IL2Z5S8B":
        assert look_alike not in ALPHABET


def test_the_same_secret_and_step_give_the_same_code_on_every_node() -> None:
    assert code_at(SECRET, START, PERIOD, at(1234)) == code_at(SECRET, START, PERIOD, at(1234))
    assert code_for_step(SECRET, 7) != code_for_step(new_secret(), 7)


def test_a_code_holds_until_the_last_millisecond_of_its_step() -> None:
    first = code_at(SECRET, START, PERIOD, at(0))
    assert first.step == 0
    assert first.expires_at == at(15_000)
    last_ms = code_at(SECRET, START, PERIOD, at(14_999))
    assert last_ms.code == first.code
    assert ok(first.code, 14_999)
    rotated = code_at(SECRET, START, PERIOD, at(15_000))
    assert rotated.step == 1
    assert rotated.code != first.code
    assert rotated.expires_at == at(30_000)


def test_the_previous_code_is_accepted_for_the_grace_period_and_not_a_millisecond_more() -> None:
    previous = code_for_step(SECRET, 0)
    assert ok(previous, 15_000)  # the first millisecond after the rotation
    assert ok(previous, 19_999)  # the last millisecond of the grace
    assert not ok(previous, 20_000)  # the grace is over exactly 5 s after the rotation
    assert ok(code_for_step(SECRET, 1), 20_000)


def test_older_codes_future_codes_and_other_sessions_codes_are_refused() -> None:
    now = 31_000  # step 2, within the grace of step 1
    assert ok(code_for_step(SECRET, 2), now)
    assert ok(code_for_step(SECRET, 1), now)
    assert not ok(code_for_step(SECRET, 0), now)  # two steps old
    assert not ok(code_for_step(SECRET, 3), now)  # not yet in force
    other = "cd" * 32
    assert not ok(code_for_step(other, 2), now)


def test_no_grace_means_only_the_current_code() -> None:
    previous = code_for_step(SECRET, 0)
    assert not verify_code(SECRET, START, PERIOD, 0, at(15_000), previous)


@pytest.mark.parametrize("typed", ["", "ABC", "ABCDEFG", "      "])
def test_malformed_codes_are_refused(typed: str) -> None:
    assert not ok(typed, 1000)


def test_what_a_student_types_is_normalised() -> None:
    code = code_for_step(SECRET, 0)
    assert normalise_code(f" {code[:3].lower()}-{code[3:].lower()} ") == code
    assert ok(f"{code[:3]} {code[3:]}".lower(), 1000)
