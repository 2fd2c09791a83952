"""Identity: JWT verification (a shared secret, a public key, or a provider's JWKS), minting, and the
server's own session tokens (``session_keys``)."""

from attendance_live.auth.tokens import Identity, TokenError, TokenService, Verified

__all__ = ["Identity", "TokenError", "TokenService", "Verified"]
