"""The lock (requirements/*.txt) covers pyproject.toml: every dependency is pinned, within its range.

./scripts/test installs requirements/test.txt with ``--require-hashes``: a dependency added to
pyproject.toml without ``./scripts/lock`` would be missing there, and this test says which.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)", re.MULTILINE)


def pins(lock: str) -> dict[str, Version]:
    text = (ROOT / "requirements" / lock).read_text(encoding="utf-8")
    return {canonicalize_name(name): Version(version) for name, version in PIN.findall(text)}


def declared(extra: str | None) -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    wanted = list(project["dependencies"])
    if extra is not None:
        wanted += project["optional-dependencies"][extra]
    return [Requirement(line) for line in wanted]


@pytest.mark.parametrize(("lock", "extra"), [("test.txt", "test"), ("server.txt", None)])
def test_every_dependency_is_pinned_within_its_range(lock: str, extra: str | None) -> None:
    pinned = pins(lock)
    problems = []
    for requirement in declared(extra):
        if requirement.marker is not None and not requirement.marker.evaluate():
            continue
        version = pinned.get(canonicalize_name(requirement.name))
        if version is None:
            problems.append(f"{requirement.name} is not in requirements/{lock}")
        elif not requirement.specifier.contains(version, prereleases=True):
            problems.append(f"{requirement.name}=={version} is outside {requirement.specifier}")
    assert problems == [], "; ".join(problems) + ": run ./scripts/lock and commit requirements/"


def test_server_and_test_locks_name_the_same_versions() -> None:
    server, test = pins("server.txt"), pins("test.txt")
    differ = {name: (pin, test.get(name)) for name, pin in server.items() if test.get(name) != pin}
    assert differ == {}, f"requirements/server.txt and test.txt disagree: {differ}; run ./scripts/lock"
