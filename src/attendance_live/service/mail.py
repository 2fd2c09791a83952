"""Plain-text email through ``SMTP_URL``: smtp:// (with STARTTLS when the server offers it) or smtps://.

The absence alerts (``service.alerts``) send their notes to students and teachers through it; the
send runs in a thread, so the event loop never waits on the mail server.
"""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from email.message import EmailMessage
from urllib.parse import unquote, urlsplit

from pydantic import SecretStr

__all__ = ["Mailer"]


class Mailer:
    """Plain-text email through ``SMTP_URL`` (smtp:// with STARTTLS when offered, or smtps://)."""

    def __init__(self, smtp_url: SecretStr | None, sender: str, *, timeout: float = 10.0) -> None:
        self.smtp_url = smtp_url
        self.sender = sender
        self.timeout = timeout

    @property
    def enabled(self) -> bool:
        return self.smtp_url is not None

    async def send(self, to: str, subject: str, body: str) -> None:
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = to
        message["Subject"] = subject
        message.set_content(body)
        await asyncio.to_thread(self._send, message)

    def _send(self, message: EmailMessage) -> None:
        assert self.smtp_url is not None
        url = urlsplit(self.smtp_url.get_secret_value())
        host = url.hostname or "localhost"
        if url.scheme == "smtps":
            client: smtplib.SMTP = smtplib.SMTP_SSL(
                host, url.port or 465, timeout=self.timeout, context=ssl.create_default_context()
            )
        else:
            client = smtplib.SMTP(host, url.port or 25, timeout=self.timeout)
        with client:
            if url.scheme == "smtp":
                client.ehlo()
                if client.has_extn("starttls"):
                    client.starttls(context=ssl.create_default_context())
                    client.ehlo()
            if url.username:
                client.login(unquote(url.username), unquote(url.password or ""))
            client.send_message(message)
