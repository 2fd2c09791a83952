"""The domain-event relay's codec between nodes (``realtime.cluster``)."""

from __future__ import annotations

from attendance_live.realtime.cluster import decode_event, encode_event
from attendance_live.service.events import EnrollmentChanged, RecordChanged, SessionEnded, SessionStarted
from attendance_live.service.views import RecordView


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


def test_the_committed_record_stays_on_its_node() -> None:
    record = RecordView(
        user_id="u",
        name="Ada",
        status="present",
        marked_at="2024-01-15T10:30:00.000Z",
        marked_by="u",
        remarks=None,
    )
    event = RecordChanged("c", "s", "u", True, record=record)
    raw = encode_event(event, "node-1")
    assert b"Ada" not in raw  # other nodes only drop caches: the record is not sent
    decoded = decode_event(raw)
    assert decoded is not None
    assert decoded[1] == event
    assert isinstance(decoded[1], RecordChanged)
    assert decoded[1].record is None
