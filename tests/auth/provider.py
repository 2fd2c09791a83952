"""A stand-in identity provider: signing keys, a JWKS endpoint on loopback, tokens shaped like real ones.

The endpoint is a real HTTP server (a thread, a free port) so that PyJWT's
JWKS client is exercised as in production. ``rotate`` publishes a new key
set; ``down`` makes the endpoint answer 503 (as a provider in trouble does);
``requests`` counts the fetches it answered.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey


@dataclass
class SigningKey:
    kid: str
    algorithm: str
    private: PrivateKey

    @classmethod
    def new(cls, algorithm: str, kid: str | None = None) -> SigningKey:
        private: PrivateKey
        if algorithm == "RS256":
            private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        elif algorithm == "ES256":
            private = ec.generate_private_key(ec.SECP256R1())
        else:
            private = ed25519.Ed25519PrivateKey.generate()
        return cls(kid or f"{algorithm.lower()}-{uuid.uuid4().hex[:8]}", algorithm, private)

    def jwk(self) -> dict[str, Any]:
        public = self.private.public_key()
        codec = {"RS256": RSAAlgorithm, "ES256": ECAlgorithm, "EdDSA": OKPAlgorithm}[self.algorithm]
        data: dict[str, Any] = codec.to_jwk(public, as_dict=True)  # type: ignore[attr-defined]
        return {**data, "kid": self.kid, "use": "sig", "alg": self.algorithm}

    def public_pem(self) -> str:
        return (
            self.private.public_key()
            .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
            .decode()
        )

    def sign(self, claims: dict[str, Any], *, kid: str | None = None) -> str:
        return jwt.encode(claims, self.private, algorithm=self.algorithm, headers={"kid": kid or self.kid})


@dataclass
class Provider:
    """The JWKS endpoint; ``url`` is set once started."""

    keys: list[SigningKey] = field(default_factory=list)
    url: str = ""
    issuer: str = ""  # its base URL, which also serves a discovery document
    requests: int = 0
    is_down: bool = False

    def rotate(self, *keys: SigningKey) -> None:
        self.keys = list(keys)

    def down(self, value: bool = True) -> None:
        self.is_down = value


@contextmanager
def serve_jwks(*keys: SigningKey) -> Iterator[Provider]:
    provider = Provider(list(keys))

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path not in ("/certs", "/.well-known/openid-configuration"):
                self.send_error(404)
                return
            provider.requests += 1
            if provider.is_down:
                self.send_error(503, "provider down")
                return
            document: dict[str, Any] = (
                {"keys": [k.jwk() for k in provider.keys]}
                if self.path == "/certs"
                else {"issuer": provider.issuer, "jwks_uri": provider.url}
            )
            body = json.dumps(document).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, name="jwks", daemon=True)
    thread.start()
    provider.issuer = f"http://127.0.0.1:{server.server_address[1]}"
    provider.url = f"{provider.issuer}/certs"
    try:
        yield provider
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def keycloak_claims(
    issuer: str, *, roles: list[str], sub: str | None = None, ttl: int = 300
) -> dict[str, Any]:
    """An access token as Keycloak issues one (realm roles under realm_access)."""
    now = int(time.time())
    return {
        "exp": now + ttl,
        "iat": now,
        "auth_time": now,
        "jti": str(uuid.uuid4()),
        "iss": issuer,
        "aud": ["attendance-live", "account"],
        "sub": sub or str(uuid.uuid4()),
        "typ": "Bearer",
        "azp": "attendance-dashboard",
        "session_state": str(uuid.uuid4()),
        "scope": "openid profile email",
        "realm_access": {"roles": ["offline_access", "uma_authorization", *roles]},
        "resource_access": {"account": {"roles": ["manage-account"]}},
        "email_verified": True,
        "name": "Grace Hopper",
        "preferred_username": "ghopper",
        "given_name": "Grace",
        "family_name": "Hopper",
        "email": "grace@uni.example",
    }


ENTRA_TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
ENTRA_APP = "6e74172b-be56-4843-9ff4-e66a39bb12e3"


def entra_claims(*, roles: list[str] | None, oid: str | None = None, ttl: int = 300) -> dict[str, Any]:
    """A v2.0 access token as Microsoft Entra ID issues one for an API with app roles."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "aud": ENTRA_APP,
        "iss": f"https://login.microsoftonline.com/{ENTRA_TENANT}/v2.0",
        "iat": now,
        "nbf": now,
        "exp": now + ttl,
        "aio": "AXQAi/8TAAAA",
        "azp": "04b07795-8ddb-461a-bbee-02f9e1bf7b46",
        "azpacr": "0",
        "name": "Ada Lovelace",
        "oid": oid or str(uuid.uuid4()),
        "preferred_username": "ada@uni.example",
        "rh": "0.AAAA",
        "scp": "access_as_user",
        "sub": "AAAAAAAAAAAAAAAAAAAAAIkzqFVrSaSaFHy782bbtaQ",
        "tid": ENTRA_TENANT,
        "uti": "fqiBqXLPj0eQa82S-IYFAA",
        "ver": "2.0",
    }
    if roles is not None:
        claims["roles"] = roles
    return claims


def bearer(token: str) -> dict[str, str]:
    """The Authorization header for ``token``."""
    return {"Authorization": f"Bearer {token}"}
