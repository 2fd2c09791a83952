"""The HTTP API: FastAPI routers, one per resource."""

__all__ = []
