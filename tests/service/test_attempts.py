"""How long to wait, in words, when join codes are refused for too many wrong ones.

The limit itself is ``attendance_live.limits`` (tests/test_limits.py) and the join's use of
it is tested end to end in tests/api/test_rosters.py.
"""

from __future__ import annotations

from attendance_live.service.joining import seconds_text


def test_waits_read_well() -> None:
    assert seconds_text(0.2) == "1 second"
    assert seconds_text(1) == "1 second"
    assert seconds_text(40) == "40 seconds"
    assert seconds_text(540) == "9 minutes"
