"""A local SMTP server (aiosmtpd) that keeps every message it receives, for the tests to await."""

from __future__ import annotations

import asyncio
import queue
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller

from tests.infra import free_port

__all__ = ["MailServer"]


class _Keep:
    def __init__(self, inbox: queue.Queue[EmailMessage]) -> None:
        self.inbox = inbox

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(message, EmailMessage)
        self.inbox.put(message)
        return "250 Message accepted for delivery"


class MailServer:
    """``start()``, then ``url`` for SMTP_URL; ``next()`` awaits the next message."""

    def __init__(self) -> None:
        self.inbox: queue.Queue[EmailMessage] = queue.Queue()
        self.port = free_port()
        self._controller = Controller(_Keep(self.inbox), hostname="127.0.0.1", port=self.port)

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def start(self) -> None:
        self._controller.start()

    def stop(self) -> None:
        self._controller.stop()

    async def next(self, timeout: float = 10.0) -> EmailMessage:
        try:
            return await asyncio.to_thread(self.inbox.get, True, timeout)
        except queue.Empty:
            raise AssertionError(f"no email within {timeout} s") from None

    def empty(self) -> bool:
        return self.inbox.empty()
