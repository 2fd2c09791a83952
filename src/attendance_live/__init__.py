"""attendance-live: real-time attendance sessions over Socket.IO and HTTP.

The package is laid out by architecture:

* ``config``    — the one typed settings object (every environment variable).
* ``vocabulary`` — the statuses, roles, id pattern and room names every layer shares.
* ``auth``      — JWT verification and minting.
* ``db``        — SQLAlchemy models, engine setup and Alembic migrations.
* ``service``   — the only code that changes state, one module per concern behind
  ``service.attendance.AttendanceService``; publishes domain events.
* ``api``       — the HTTP API (FastAPI routers).
* ``realtime``  — the Socket.IO server and the relay that turns domain
  events (the outbox stream) into room emits on every node.
* ``app``       — assembles all of the above into one ASGI application.
* ``cli``       — ``attendance-live serve | migrate | demo | token | watch``.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
