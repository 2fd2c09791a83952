"""The real-time half: the Socket.IO server (the seed's protocol) and the outbox relay."""

__all__ = []
