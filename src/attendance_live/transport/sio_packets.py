"""Socket.IO v5 packets: encoding, decoding, and binary attachments.

A packet travels as one Engine.IO MESSAGE whose text is::

    <type>[<attachments>-][<namespace>,][<ack id>][<JSON payload>]

with ``/`` the namespace when it is left out. A BINARY_EVENT or BINARY_ACK is
followed by its attachments, one binary MESSAGE each; in the JSON each stands
as ``{"_placeholder": true, "num": i}``.

Whatever does not fit the specification raises :class:`SocketPacketError`; the
connection that sent it is closed, as the specification's test suite expects.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

import orjson

__all__ = [
    "BinaryAssembler",
    "SocketPacket",
    "SocketPacketError",
    "SocketPacketType",
    "decode_packet",
    "encode_packet",
]

# Longer ack ids are refused: a client has no use for more than 2**53, as in JavaScript.
_MAX_ACK_DIGITS = 16
_MAX_ATTACHMENTS = 64


class SocketPacketType(IntEnum):
    CONNECT = 0
    DISCONNECT = 1
    EVENT = 2
    ACK = 3
    CONNECT_ERROR = 4
    BINARY_EVENT = 5
    BINARY_ACK = 6


class SocketPacketError(ValueError):
    """A Socket.IO packet that breaks the specification."""


@dataclass(slots=True)
class SocketPacket:
    type: SocketPacketType
    namespace: str = "/"
    data: Any = None
    ack_id: int | None = None
    attachments: int = 0
    binaries: list[bytes] = field(default_factory=list)


def encode_packet(packet: SocketPacket) -> list[str | bytes]:
    """The Engine.IO MESSAGE payloads of one packet: its text, then any attachments.

    Bytes anywhere in ``data`` make an EVENT a BINARY_EVENT (an ACK a BINARY_ACK).
    """
    kind = packet.type
    data = packet.data
    binaries: list[bytes] = []
    if data is not None and kind in (SocketPacketType.EVENT, SocketPacketType.ACK):
        data = _deconstruct(data, binaries)
        if binaries:
            kind = (
                SocketPacketType.BINARY_EVENT
                if kind is SocketPacketType.EVENT
                else SocketPacketType.BINARY_ACK
            )
    parts = [str(int(kind))]
    if binaries:
        parts.append(f"{len(binaries)}-")
    if packet.namespace != "/":
        parts.append(packet.namespace + ",")
    if packet.ack_id is not None:
        parts.append(str(packet.ack_id))
    if data is not None:
        parts.append(orjson.dumps(data).decode())
    return ["".join(parts), *binaries]


_TYPES = {str(int(kind)): kind for kind in SocketPacketType}


def _is_ascii_digits(text: str) -> bool:
    return text.isascii() and text.isdigit()


def decode_packet(text: str) -> SocketPacket:
    """The text part of a packet; a binary one still waits for its attachments."""
    kind = _TYPES.get(text[:1])
    if kind is None:
        # The type character only: a packet's content may carry a token, and this goes to the log.
        raise SocketPacketError(f"unknown Socket.IO packet type {text[:1]!r} (expected 0 to 6)")
    end = len(text)
    i = 1
    attachments = 0
    if kind in (SocketPacketType.BINARY_EVENT, SocketPacketType.BINARY_ACK):
        dash = text.find("-", i)
        count = text[i:dash]
        if dash < 0 or not _is_ascii_digits(count) or not 0 < int(count) <= _MAX_ATTACHMENTS:
            raise SocketPacketError("a binary packet needs its attachment count, e.g. '451-'")
        attachments = int(count)
        i = dash + 1
    namespace = "/"
    if i < end and text[i] == "/":
        comma = text.find(",", i)
        if comma < 0:
            namespace, i = text[i:], end
        else:
            namespace, i = text[i:comma], comma + 1
    start = i
    while i < end and "0" <= text[i] <= "9":  # ASCII only: str.isdigit also takes '²' or '٣'
        i += 1
    ack_id = None
    if i > start:
        if i - start > _MAX_ACK_DIGITS:
            raise SocketPacketError("ack id too long")
        ack_id = int(text[start:i])
    data = None
    if i < end:
        try:
            data = orjson.loads(text[i:])
        except orjson.JSONDecodeError:
            raise SocketPacketError(
                f"invalid JSON payload in a Socket.IO packet, at character {i} of {len(text)}"
            ) from None
    packet = SocketPacket(kind, namespace, data, ack_id, attachments)
    _validate(packet)
    return packet


def _validate(packet: SocketPacket) -> None:
    kind, data = packet.type, packet.data
    if kind is SocketPacketType.CONNECT:
        if data is not None and not isinstance(data, dict):
            raise SocketPacketError("a CONNECT payload must be an object")
    elif kind is SocketPacketType.DISCONNECT:
        if data is not None:
            raise SocketPacketError("a DISCONNECT packet has no payload")
    elif kind in (SocketPacketType.EVENT, SocketPacketType.BINARY_EVENT):
        if not (isinstance(data, list) and data and isinstance(data[0], str)):
            raise SocketPacketError("an EVENT payload must be an array that starts with the event name")
    elif kind in (SocketPacketType.ACK, SocketPacketType.BINARY_ACK):
        if not isinstance(data, list) or packet.ack_id is None:
            raise SocketPacketError("an ACK needs an id and an array payload")
    else:
        raise SocketPacketError("clients do not send CONNECT_ERROR")


class BinaryAssembler:
    """Collects the attachments of one binary packet, then puts them in place."""

    def __init__(self, packet: SocketPacket) -> None:
        self.packet = packet

    def add(self, attachment: bytes) -> SocketPacket | None:
        """The complete packet once its last attachment arrived, else None."""
        packet = self.packet
        packet.binaries.append(attachment)
        if len(packet.binaries) < packet.attachments:
            return None
        packet.data = _reconstruct(packet.data, packet.binaries)
        return packet


def _deconstruct(data: Any, binaries: list[bytes]) -> Any:
    if isinstance(data, bytes | bytearray | memoryview):
        binaries.append(bytes(data))
        return {"_placeholder": True, "num": len(binaries) - 1}
    if isinstance(data, list | tuple):
        return [_deconstruct(item, binaries) for item in data]
    if isinstance(data, dict):
        return {key: _deconstruct(value, binaries) for key, value in data.items()}
    return data


def _reconstruct(data: Any, binaries: list[bytes]) -> Any:
    if isinstance(data, list):
        return [_reconstruct(item, binaries) for item in data]
    if isinstance(data, dict):
        if data.get("_placeholder") is True and len(data) == 2:
            num = data.get("num")
            if not isinstance(num, int) or isinstance(num, bool) or not 0 <= num < len(binaries):
                raise SocketPacketError(f"attachment placeholder {num!r} points at no attachment")
            return binaries[num]
        return {key: _reconstruct(value, binaries) for key, value in data.items()}
    return data
