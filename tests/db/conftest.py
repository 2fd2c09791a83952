from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from attendance_live.config import Settings
from attendance_live.db.engine import Database
from attendance_live.db.migrate import upgrade


@pytest.fixture
async def database(settings: Settings) -> AsyncIterator[Database]:
    """A migrated database of the configured kind (SQLite, or PostgreSQL with ATTENDANCE_TEST_DATABASE)."""
    db = Database(settings.database_url)
    await upgrade(db)
    yield db
    await db.dispose()
