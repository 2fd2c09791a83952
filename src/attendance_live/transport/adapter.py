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
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .namespace import EncodedPacket, Socket

__all__ = ["Adapter", "InMemoryAdapter"]


class Adapter(ABC):
    """What a namespace needs from its rooms."""

    @abstractmethod
    def join(self, socket: Socket, room: str) -> None: ...

    @abstractmethod
    def leave(self, socket: Socket, room: str) -> None: ...

    @abstractmethod
    def leave_all(self, socket: Socket) -> None: ...

    @abstractmethod
    def members(self, room: str) -> Iterable[Socket]: ...

    @abstractmethod
    def broadcast_local(self, packet: EncodedPacket, rooms: Iterable[str], skip: Socket | None) -> int:
        """Write ``packet`` to this node's members of ``rooms``; the number of recipients."""

    @abstractmethod
    def room_size(self, room: str) -> int:
        """This node's members of ``room``."""

    @abstractmethod
    def room_names(self) -> list[str]:
        """The rooms with a member on this node."""

    def broadcast(self, packet: EncodedPacket, rooms: Iterable[str], skip: Socket | None = None) -> int:
        """Every node's members of ``rooms`` get ``packet``; the number of recipients on this node."""
        return self.broadcast_local(packet, rooms, skip)

    async def start(self) -> None:  # noqa: B027 (a hook: one node has nothing to connect)
        """Connect to the other nodes, if there are any (before clients are taken)."""

    async def stop(self) -> None:  # noqa: B027 (a hook, as start)
        """Stop talking to the other nodes (after the last broadcast)."""


class InMemoryAdapter(Adapter):
    """Rooms of one process: room name → its sockets (each socket also knows its rooms)."""

    def __init__(self) -> None:
        self.rooms: dict[str, set[Socket]] = {}

    def join(self, socket: Socket, room: str) -> None:
        self.rooms.setdefault(room, set()).add(socket)
        socket.rooms.add(room)

    def leave(self, socket: Socket, room: str) -> None:
        socket.rooms.discard(room)
        members = self.rooms.get(room)
        if members is not None:
            members.discard(socket)
            if not members:
                del self.rooms[room]

    def leave_all(self, socket: Socket) -> None:
        for room in list(socket.rooms):
            self.leave(socket, room)

    def members(self, room: str) -> Iterable[Socket]:
        return self.rooms.get(room, ())

    def room_size(self, room: str) -> int:
        return len(self.rooms.get(room, ()))

    def room_names(self) -> list[str]:
        return list(self.rooms)

    def broadcast_local(self, packet: EncodedPacket, rooms: Iterable[str], skip: Socket | None) -> int:
        rooms = list(rooms)
        if len(rooms) == 1:
            recipients: Iterable[Socket] = self.rooms.get(rooms[0], ())
        else:
            # A socket in several of the rooms gets the packet once.
            union: set[Socket] = set()
            for room in rooms:
                union.update(self.rooms.get(room, ()))
            recipients = union
        count = 0
        for socket in list(recipients):
            if socket is not skip:
                socket.send_encoded(packet)
                count += 1
        return count
