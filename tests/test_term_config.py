"""The term's settings (``term_config``): read with the others, errors that name the variable and
the fix, and never print an SMTP password."""

from __future__ import annotations

import ipaddress

import pytest

from attendance_live.config import ConfigError, load_settings


def test_the_term_settings_are_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEBHOOK_ALLOWED_NETWORKS", "10.20.0.0/16, 127.0.0.1")
    monkeypatch.setenv("SMTP_URL", "smtp://mailer:s3cret@mail.example.edu:587")
    monkeypatch.setenv("DASHBOARD_URL", "https://attendance.example.edu/")
    monkeypatch.setenv("TIMETABLE_POLL_SECONDS", "10")
    settings = load_settings()
    assert settings.webhook_allowed_networks == (
        ipaddress.ip_network("10.20.0.0/16"),
        ipaddress.ip_network("127.0.0.1/32"),
    )
    assert settings.smtp_url is not None
    assert settings.smtp_url.get_secret_value() == "smtp://mailer:s3cret@mail.example.edu:587"
    assert "s3cret" not in repr(settings)
    assert settings.dashboard_url == "https://attendance.example.edu"
    assert settings.timetable_poll_seconds == 10
    assert settings.webhook_timeout_seconds == 5


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        ("WEBHOOK_ALLOWED_NETWORKS", "10.0.0.1/8", "is not a network"),
        ("WEBHOOK_TIMEOUT_SECONDS", "120", "from 1 to 30"),
        ("SMTP_URL", "http://user:pw@mail.example.edu", "not an smtp:// or smtps:// URL"),
        ("DASHBOARD_URL", "attendance.example.edu", "is not an http(s) URL"),
    ],
)
def test_a_bad_term_setting_stops_the_server_with_the_fix(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, says: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    text = str(caught.value)
    assert text.startswith(f"Configuration error: {variable} ")
    assert says in text
    assert "pw@" not in text
