"""The wire formats: Engine.IO packets and payloads, Socket.IO packets and attachments."""

from __future__ import annotations

import pytest
from websockets.frames import Frame as WsFrame
from websockets.frames import Opcode
from websockets.protocol import Protocol, Side

from attendance_live.transport.eio_packets import (
    Packet,
    PacketError,
    PacketType,
    decode_frame,
    decode_payload,
    encode_payload,
    message_frame,
)
from attendance_live.transport.namespace import encode_event
from attendance_live.transport.sio_packets import (
    BinaryAssembler,
    SocketPacket,
    SocketPacketError,
    SocketPacketType,
    decode_packet,
    encode_packet,
)
from attendance_live.transport.ws_protocol import server_frame


def test_engine_frames_decode_by_their_type_digit() -> None:
    assert decode_frame("4hello") == Packet(PacketType.MESSAGE, "hello")
    assert decode_frame("2probe") == Packet(PacketType.PING, "probe")
    assert decode_frame("3") == Packet(PacketType.PONG, "")
    assert decode_frame(b"\x01\x02") == Packet(PacketType.MESSAGE, b"\x01\x02")


@pytest.mark.parametrize("bad", ["", "abc", "7", "9x"])
def test_an_engine_frame_with_an_unknown_type_is_refused(bad: str) -> None:
    with pytest.raises(PacketError, match=r"unknown Engine\.IO packet type"):
        decode_frame(bad)


def test_polling_payloads_round_trip_text_and_binary() -> None:
    body = "4hello\x1ebAQIDBA==\x1e3"
    assert decode_payload(body) == [
        Packet(PacketType.MESSAGE, "hello"),
        Packet(PacketType.MESSAGE, b"\x01\x02\x03\x04"),
        Packet(PacketType.PONG, ""),
    ]
    assert encode_payload([message_frame("hello"), message_frame(b"\x01\x02\x03\x04"), "3"]) == body


def test_a_polling_payload_with_bad_base64_is_refused() -> None:
    with pytest.raises(PacketError, match="invalid base64"):
        decode_payload("4ok\x1eb!!!")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("40", SocketPacket(SocketPacketType.CONNECT)),
        ('40{"token":"123"}', SocketPacket(SocketPacketType.CONNECT, data={"token": "123"})),
        ("40/custom,", SocketPacket(SocketPacketType.CONNECT, "/custom")),
        ("40/random", SocketPacket(SocketPacketType.CONNECT, "/random")),
        ("41/custom,", SocketPacket(SocketPacketType.DISCONNECT, "/custom")),
        (
            '2["message",1,"2",{"3":[true]}]',
            SocketPacket(SocketPacketType.EVENT, data=["message", 1, "2", {"3": [True]}]),
        ),
        ('2/custom,7["a"]', SocketPacket(SocketPacketType.EVENT, "/custom", ["a"], 7)),
        ("3456[1]", SocketPacket(SocketPacketType.ACK, data=[1], ack_id=456)),
    ],
)
def test_socket_packets_decode(text: str, expected: SocketPacket) -> None:
    # Engine.IO's "4" is not part of a Socket.IO packet; the tests of the suite write "40".
    decoded = decode_packet(text[1:] if text.startswith("4") else text)
    assert decoded == expected


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("abc", "unknown Socket.IO packet type"),
        ("2{}", "must be an array"),
        ("2[]", "must be an array"),
        ("2[1]", "must be an array"),
        ('2abc["message"]', "invalid JSON"),
        ("0[1]", "CONNECT payload must be an object"),
        ("1{}", "no payload"),
        ("3[1]", "needs an id"),
        ('4{"message":"x"}', "clients do not send CONNECT_ERROR"),
        ('5["a",{}]', "attachment count"),
        ("2" + "1" * 17 + '["a"]', "ack id too long"),
        # Unicode digits are not ASCII digits (str.isdigit takes them; int() does not take '²').
        ('2²["a"]', "invalid JSON"),
        ("٣[1]", "unknown Socket.IO packet type"),
        ('5²-["a",{}]', "attachment count"),
    ],
)
def test_malformed_socket_packets_are_refused(text: str, problem: str) -> None:
    with pytest.raises(SocketPacketError, match=problem):
        decode_packet(text)


def test_an_event_with_bytes_becomes_a_binary_event_with_placeholders() -> None:
    frames = encode_packet(SocketPacket(SocketPacketType.EVENT, "/", ["file", b"\x01", {"x": b"\x02"}]))
    assert frames == [
        '52-["file",{"_placeholder":true,"num":0},{"x":{"_placeholder":true,"num":1}}]',
        b"\x01",
        b"\x02",
    ]


def test_binary_attachments_are_put_back_in_place() -> None:
    packet = decode_packet('52-/custom,9["file",{"_placeholder":true,"num":1},{"_placeholder":true,"num":0}]')
    assembler = BinaryAssembler(packet)
    assert assembler.add(b"first") is None
    done = assembler.add(b"second")
    assert done is not None
    assert (done.namespace, done.ack_id, done.data) == ("/custom", 9, ["file", b"second", b"first"])


def test_a_placeholder_pointing_at_no_attachment_is_refused() -> None:
    assembler = BinaryAssembler(decode_packet('51-["file",{"_placeholder":true,"num":3}]'))
    with pytest.raises(SocketPacketError, match="points at no attachment"):
        assembler.add(b"only")


def test_an_encoded_event_is_ready_for_the_engine() -> None:
    assert encode_event("/", "hello", {"a": 1}) == ('42["hello",{"a":1}]',)
    assert encode_event("/admin", "bin", b"\x00") == (
        '451-/admin,["bin",{"_placeholder":true,"num":0}]',
        b"\x00",
    )


@pytest.mark.parametrize("size", [0, 1, 125, 126, 65535, 65536, 70000])
def test_server_frames_are_the_bytes_websockets_would_write(size: int) -> None:
    text = "é" * (size // 2) + "x" * (size % 2)  # multi-byte UTF-8: the length is of the bytes
    data = bytes(range(256)) * (size // 256) + bytes(size % 256)
    assert server_frame(text) == WsFrame(Opcode.TEXT, text.encode()).serialize(mask=False)
    assert server_frame(data) == WsFrame(Opcode.BINARY, data).serialize(mask=False)
    # And they read back as what was sent.
    reader = Protocol(Side.CLIENT)
    reader.receive_data(server_frame(text) + server_frame(data))
    frames = [event for event in reader.events_received() if isinstance(event, WsFrame)]
    assert [(frame.opcode, bytes(frame.data)) for frame in frames] == [
        (Opcode.TEXT, text.encode()),
        (Opcode.BINARY, data),
    ]
