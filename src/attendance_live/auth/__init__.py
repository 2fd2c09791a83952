"""Identity: JWT verification and minting."""

from attendance_live.auth.tokens import Identity, TokenError, TokenService

__all__ = ["Identity", "TokenError", "TokenService"]
