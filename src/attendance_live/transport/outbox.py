"""A bounded outgoing buffer: what one connection has not yet written.

Writers append and never wait. When the frames waiting for one connection pass
the limit, that connection is stalled (it stopped reading, or its link is far
slower than the events): :meth:`Outbox.push` says so and the engine closes it,
so a broadcast never waits on any one client and a stalled client cannot grow
the server's memory without bound.
"""

from __future__ import annotations

from collections import deque

from .eio_packets import Frame, frame_size

__all__ = ["Outbox"]


class Outbox:
    __slots__ = ("_frames", "limit", "size")

    def __init__(self, limit: int) -> None:
        self._frames: deque[Frame] = deque()
        self.limit = limit
        self.size = 0

    def push(self, frame: Frame) -> bool:
        """Queue a frame; False when the buffer is now over its limit (the frame is kept)."""
        self._frames.append(frame)
        self.size += frame_size(frame)
        return self.size <= self.limit

    def take_all(self) -> list[Frame]:
        frames = list(self._frames)
        self._frames.clear()
        self.size = 0
        return frames

    def popleft(self) -> Frame:
        frame = self._frames.popleft()
        self.size -= frame_size(frame)
        return frame

    def clear(self) -> None:
        self._frames.clear()
        self.size = 0

    def __bool__(self) -> bool:
        return bool(self._frames)

    def __len__(self) -> int:
        return len(self._frames)
