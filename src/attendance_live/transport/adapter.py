"""Rooms and fan-out for one namespace: the seam where several nodes plug in.

The ladder, after python-socketio's client managers and Node's adapters:

* :class:`InMemoryAdapter` (here): rooms of this process; a broadcast writes
  the one encoded frame to each local member, in a plain loop that never
  awaits.
* :class:`~.pubsub.PubSubAdapter`: ``broadcast`` also publishes the encoded
  frames with their rooms to the other nodes, whose listeners call
  :meth:`Adapter.broadcast_local`. Joining and leaving stay local; a node only
  ever writes to its own sockets.
* :class:`~.redis_adapter.RedisAdapter`: that pub/sub over a Redis channel.

An adapter knows a room's members only as :class:`Member`: something with a set
of room names that takes an encoded packet. A namespace's sockets are members;
this module needs nothing from the layers above it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from typing import Protocol

from .eio_packets import EncodedPacket

__all__ = ["Adapter", "InMemoryAdapter", "Member"]


class Member(Protocol):
    """A room member as the adapter sees it (a namespace's ``Socket`` is one)."""

    #: The rooms this member is in; the adapter keeps it in step with its own rooms.
    rooms: set[str]

    def send_encoded(self, packet: EncodedPacket) -> None:
        """Write an already encoded packet to this member; never waits."""


class Adapter(ABC):
    """What a namespace needs from its rooms."""

    @abstractmethod
    def join(self, member: Member, room: str) -> None: ...

    @abstractmethod
    def leave(self, member: Member, room: str) -> None: ...

    @abstractmethod
    def leave_all(self, member: Member) -> None: ...

    @abstractmethod
    def members(self, room: str) -> Iterable[Member]: ...

    @abstractmethod
    def broadcast_local(self, packet: EncodedPacket, rooms: Iterable[str], skip: Member | None) -> int:
        """Write ``packet`` to this node's members of ``rooms``; the number of recipients."""

    @abstractmethod
    def room_size(self, room: str) -> int:
        """This node's members of ``room``."""

    @abstractmethod
    def room_names(self) -> list[str]:
        """The rooms with a member on this node."""

    def broadcast(self, packet: EncodedPacket, rooms: Iterable[str], skip: Member | None = None) -> int:
        """Every node's members of ``rooms`` get ``packet``; the number of recipients on this node."""
        return self.broadcast_local(packet, rooms, skip)

    async def start(self) -> None:  # noqa: B027 (a hook: one node has nothing to connect)
        """Connect to the other nodes, if there are any (before clients are taken)."""

    async def stop(self) -> None:  # noqa: B027 (a hook, as start)
        """Stop talking to the other nodes (after the last broadcast)."""


class InMemoryAdapter(Adapter):
    """Rooms of one process: room name → its members (each member also knows its rooms)."""

    def __init__(self) -> None:
        self.rooms: dict[str, set[Member]] = {}

    def join(self, member: Member, room: str) -> None:
        self.rooms.setdefault(room, set()).add(member)
        member.rooms.add(room)

    def leave(self, member: Member, room: str) -> None:
        member.rooms.discard(room)
        members = self.rooms.get(room)
        if members is not None:
            members.discard(member)
            if not members:
                del self.rooms[room]

    def leave_all(self, member: Member) -> None:
        for room in list(member.rooms):
            self.leave(member, room)

    def members(self, room: str) -> Iterable[Member]:
        return self.rooms.get(room, ())

    def room_size(self, room: str) -> int:
        return len(self.rooms.get(room, ()))

    def room_names(self) -> list[str]:
        return list(self.rooms)

    def broadcast_local(self, packet: EncodedPacket, rooms: Iterable[str], skip: Member | None) -> int:
        rooms = list(rooms)
        if len(rooms) == 1:
            recipients: Iterable[Member] = self.rooms.get(rooms[0], ())
        else:
            # A member of several of the rooms gets the packet once.
            union: set[Member] = set()
            for room in rooms:
                union.update(self.rooms.get(room, ()))
            recipients = union
        count = 0
        for member in list(recipients):
            if member is not skip:
                member.send_encoded(packet)
                count += 1
        return count
