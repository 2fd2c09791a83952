"""An identity provider for the tests that run the whole server against one (``tests.auth.provider``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.auth.provider import Provider, SigningKey, serve_jwks


@pytest.fixture(scope="module")
def signing_key() -> SigningKey:
    return SigningKey.new("RS256", kid="idp-rsa-1")


@pytest.fixture
def provider(signing_key: SigningKey) -> Iterator[Provider]:
    """The provider's discovery document and JWKS, served on a free loopback port."""
    with serve_jwks(signing_key) as running:
        yield running
