"""Settings: database URLs, list variables, errors that name the variable (``config``)."""

from __future__ import annotations

import pytest

from attendance_live.config import ConfigError, load_settings, normalise_database_url


class TestSettings:
    def test_database_urls_normalised(self) -> None:
        assert normalise_database_url("sqlite:///x.db") == "sqlite+aiosqlite:///x.db"
        assert normalise_database_url("postgresql://u:p@h/db") == "postgresql+asyncpg://u:p@h/db"
        assert normalise_database_url("postgres://u:p@h/db") == "postgresql+asyncpg://u:p@h/db"
        with pytest.raises(ValueError, match="in-memory"):
            normalise_database_url("sqlite://")

    def test_cors_origins_from_a_comma_list(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("CORS_ORIGINS", "http://a.example, http://b.example")
        assert load_settings().cors_origins == ["http://a.example", "http://b.example"]

    def test_error_names_variable_and_fix_without_the_secret(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("ACCESS_TOKEN_SECRET", "hunter2")
        with pytest.raises(ConfigError) as caught:
            load_settings()
        text = str(caught.value)
        assert text.startswith("Configuration error: ACCESS_TOKEN_SECRET")
        assert "secrets.token_urlsafe" in text
        assert "hunter2" not in text
