"""Identity: JWT verification (a shared secret, a public key, or a provider's JWKS) and minting."""

from attendance_live.auth.tokens import Identity, TokenError, TokenService, Verified

__all__ = ["Identity", "TokenError", "TokenService", "Verified"]
