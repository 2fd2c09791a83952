from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest

from tests.helpers import Recorder


@pytest.fixture
async def recorders() -> AsyncIterator[Callable[[str], Recorder]]:
    """Make recorders; every one is disconnected at the end."""
    made: list[Recorder] = []

    def make(name: str = "client") -> Recorder:
        recorder = Recorder(name)
        made.append(recorder)
        return recorder

    yield make
    for recorder in made:
        await recorder.close()
