"""Engine.IO v4 packets: the one-character types and the two framings.

An Engine.IO packet is a type digit followed by its data. On a websocket each
packet is one websocket message; a binary message is always a MESSAGE packet
with no type prefix. On HTTP long-polling several packets travel in one body,
separated by the record separator ``\\x1e``; a binary packet is written there as
``b`` followed by its base64.

A *frame* here is one packet already encoded for the websocket (``str`` for
text, ``bytes`` for binary). Frames are what the outgoing buffers hold: a
broadcast encodes its frame once and every recipient gets the same object.
"""

from __future__ import annotations

import base64
import binascii
from enum import IntEnum
from typing import NamedTuple

__all__ = [
    "CLOSE_FRAME",
    "NOOP_FRAME",
    "PING_FRAME",
    "RECORD_SEPARATOR",
    "EncodedPacket",
    "Frame",
    "Packet",
    "PacketError",
    "PacketType",
    "decode_frame",
    "decode_payload",
    "encode_payload",
    "frame_size",
    "message_frame",
]

Frame = str | bytes

#: A packet encoded once as its Engine.IO frames (the text, then any attachments), ready to be
#: written to any number of connections.
EncodedPacket = tuple[Frame, ...]

RECORD_SEPARATOR = "\x1e"


class PacketType(IntEnum):
    OPEN = 0
    CLOSE = 1
    PING = 2
    PONG = 3
    MESSAGE = 4
    UPGRADE = 5
    NOOP = 6


class PacketError(ValueError):
    """A frame or a polling body that is not Engine.IO v4; the connection that sent it is closed."""


class Packet(NamedTuple):
    type: PacketType
    data: str | bytes = ""


PING_FRAME: Frame = "2"
CLOSE_FRAME: Frame = "1"
NOOP_FRAME: Frame = "6"

_TYPES = {str(int(kind)): kind for kind in PacketType}


def message_frame(data: str | bytes) -> Frame:
    """The frame of a MESSAGE packet: ``4`` + text, or the raw bytes for binary."""
    return data if isinstance(data, bytes) else "4" + data


def frame_size(frame: Frame) -> int:
    """What a frame costs in an outgoing buffer. Text counts characters (the
    encoded size of ASCII, which JSON payloads nearly always are): measuring
    bytes would mean encoding each frame once per recipient."""
    return len(frame)


def decode_frame(message: str | bytes) -> Packet:
    """One websocket message as a packet."""
    if isinstance(message, bytes):
        return Packet(PacketType.MESSAGE, message)
    kind = _TYPES.get(message[:1])
    if kind is None:
        # The type character only: a packet's content may carry a token, and this goes to the log.
        raise PacketError(f"unknown Engine.IO packet type {message[:1]!r} (expected 0 to 6)")
    return Packet(kind, message[1:])


def decode_payload(body: str) -> list[Packet]:
    """A long-polling request body as its packets."""
    packets = []
    for part in body.split(RECORD_SEPARATOR):
        if part.startswith("b"):
            try:
                packets.append(Packet(PacketType.MESSAGE, base64.b64decode(part[1:], validate=True)))
            except binascii.Error as exc:
                raise PacketError(f"invalid base64 in a binary packet: {exc}") from None
        else:
            packets.append(decode_frame(part))
    return packets


def encode_payload(frames: list[Frame]) -> str:
    """Frames as one long-polling response body."""
    return RECORD_SEPARATOR.join(
        "b" + base64.b64encode(frame).decode("ascii") if isinstance(frame, bytes) else frame
        for frame in frames
    )
