"""Logging: plain text or one JSON object a line, and never a token.

A filter on the root handler replaces anything shaped like a JWT with
``[redacted-jwt]``, whoever logged it (our code, uvicorn's access log, a
library's debug output).
"""

from __future__ import annotations

import json
import logging
import re
import sys
from contextvars import ContextVar
from datetime import UTC, datetime

__all__ = [
    "BEARER",
    "JWT_SHAPE",
    "configure_logging",
    "connection_id",
    "redact",
    "request_id",
]

# The HTTP request or Socket.IO connection a log line belongs to ("-" outside both).
request_id: ContextVar[str] = ContextVar("request_id", default="-")
connection_id: ContextVar[str] = ContextVar("connection_id", default="-")

JWT_SHAPE = re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}")
BEARER = re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/-]+=*")


def redact(text: str) -> str:
    return BEARER.sub(r"\1[redacted]", JWT_SHAPE.sub("[redacted-jwt]", text))


class _RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get()
        record.connection_id = connection_id.get()
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in ("request_id", "connection_id"):
            value = getattr(record, key, "-")
            if value != "-":
                entry[key] = value
        if record.exc_info:
            entry["exception"] = redact(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(level: str = "info", fmt: str = "text") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_RedactingFilter())
    if fmt == "json":
        handler.setFormatter(_JsonFormatter())
    else:
        handler.setFormatter(
            logging.Formatter(
                "%(asctime)s %(levelname)-7s %(name)s [%(request_id)s %(connection_id)s]: %(message)s"
            )
        )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
    # Libraries' chatter stays at warning unless we ask for debug.
    quiet = logging.DEBUG if level == "debug" else logging.WARNING
    for name in (
        "sqlalchemy",
        "aiosqlite",
        "asyncio",
        "alembic",
        "websockets",  # the frame codec under transport/ws_protocol.py: a line per connection
    ):
        logging.getLogger(name).setLevel(quiet)
    logging.getLogger("alembic.runtime.migration").setLevel(logging.WARNING)
