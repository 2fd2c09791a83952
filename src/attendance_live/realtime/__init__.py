"""The real-time half: the Socket.IO server (the seed's protocol) and the notifier."""

__all__ = []
