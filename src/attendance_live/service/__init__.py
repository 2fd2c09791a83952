"""The service layer: every state change happens here, then a domain event is published."""

__all__ = []
