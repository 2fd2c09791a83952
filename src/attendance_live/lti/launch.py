"""The launch: OIDC third-party-initiated login, then the id_token's validation.

Follows the 1EdTech Security Framework §5.1.1 and LTI Core §5.3:

1. ``/lti/login`` receives ``iss``, ``login_hint``, ``target_link_uri`` (and ``client_id``,
   ``lti_message_hint``, ``lti_deployment_id``) from a registered platform, stores a fresh
   ``state`` and ``nonce`` (``lti_logins``), sets the state in a short-lived
   ``SameSite=None; Secure`` cookie that binds it to this browser, and redirects to the
   platform's authorization URL.
2. ``/lti/launch`` receives ``id_token`` and ``state``. The state must match the cookie; the
   token must be signed (RS256) by a key of the platform's JWKS (``auth.jwks.JwksKeys``:
   cached, refetched on an unknown ``kid`` at most every 30 s), for our ``client_id``
   (``aud``; ``azp`` when there are several audiences), issued at most
   :data:`MAX_TOKEN_AGE` seconds ago and not expired, with the nonce of that state — and
   that state is then marked used with a conditional ``UPDATE ... WHERE used_at IS NULL``,
   so a replay is refused on every node. Then the deployment id must be registered, the
   message type ``LtiResourceLinkRequest`` and the version ``1.3.0``.

Every refusal is a :class:`LaunchError`: a short reason for the person (never the token),
shown with a reference id that is also in the log line.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Final
from urllib.parse import urlencode

import jwt
from sqlalchemy import delete, update

from attendance_live.auth.jwks import JwksKeys
from attendance_live.db.engine import Database
from attendance_live.db.lti_models import LtiLogin
from attendance_live.lti.registry import LTI_ALGORITHM, PlatformInfo, list_platforms
from attendance_live.timeutil import Clock

__all__ = [
    "AGS_CLAIM",
    "CLAIM",
    "LEEWAY",
    "LOGIN_SECONDS",
    "MAX_TOKEN_AGE",
    "NRPS_CLAIM",
    "Launch",
    "LaunchError",
    "Launcher",
    "login_cookie_name",
]

CLAIM: Final = "https://purl.imsglobal.org/spec/lti/claim/"
NRPS_CLAIM: Final = "https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice"
AGS_CLAIM: Final = "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"
# A login's state is good for this long (the person is between two redirects).
LOGIN_SECONDS: Final = 300
# An id_token issued longer ago than this is refused, whatever its exp says.
MAX_TOKEN_AGE: Final = 300
LEEWAY: Final = 30


class LaunchError(Exception):
    """A refused login or launch: ``reason`` for the person and the log, ``status`` for HTTP."""

    def __init__(self, reason: str, *, status: int = 400) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


@dataclass(frozen=True, slots=True)
class Launch:
    """A validated launch: who, from where, in which context, with which roles."""

    platform: PlatformInfo
    deployment_id: str
    subject: str
    name: str
    email: str | None
    roles: tuple[str, ...]
    context_id: str
    context_title: str
    context_label: str
    memberships_url: str | None
    lineitems_url: str | None
    ags_scopes: tuple[str, ...]
    claims: dict[str, Any]


class Launcher:
    """Logins and launches for every registered platform (see the module docstring)."""

    def __init__(self, database: Database, *, redirect_uri: str, clock: Clock) -> None:
        self.database = database
        self.redirect_uri = redirect_uri
        self.clock = clock
        self._jwks: dict[str, JwksKeys] = {}

    async def close(self) -> None:
        for keys in self._jwks.values():
            await keys.close()

    def keys_of(self, platform: PlatformInfo) -> JwksKeys:
        keys = self._jwks.get(platform.jwks_url)
        if keys is None:
            keys = JwksKeys(
                platform.jwks_url, LTI_ALGORITHM, source=f"the JWKS of LTI platform {platform.issuer}"
            )
            self._jwks[platform.jwks_url] = keys
        return keys

    async def _platform(self, issuer: str, client_id: str | None) -> PlatformInfo:
        matches = [
            p
            for p in await list_platforms(self.database)
            if p.issuer == issuer and client_id in (None, p.client_id)
        ]
        if not matches:
            known = "with this client id " if client_id else ""
            raise LaunchError(
                f"The platform {issuer[:200]!r} is not registered {known}with this tool; its administrator "
                "registers it with `attendance-live lti register`",
                status=403,
            )
        if len(matches) > 1:
            raise LaunchError(
                f"Several registrations have the issuer {issuer[:200]!r} and the login did not say which "
                "(no client_id); set the client id in the platform's tool configuration",
                status=400,
            )
        return matches[0]

    # ----------------------------------------------------------------- login

    async def login(self, params: dict[str, str]) -> tuple[str, str, PlatformInfo]:
        """The platform's authorization URL to redirect to, the state (for the cookie), the platform."""
        issuer = params.get("iss", "")
        login_hint = params.get("login_hint", "")
        target = params.get("target_link_uri", "")
        if not issuer or not login_hint or not target:
            missing = [n for n in ("iss", "login_hint", "target_link_uri") if not params.get(n)]
            raise LaunchError(
                f"The login initiation lacks {', '.join(missing)}; start the tool from the LMS course page"
            )
        platform = await self._platform(issuer, params.get("client_id") or None)
        deployment = params.get("lti_deployment_id")
        if deployment is not None and deployment not in platform.deployments:
            raise LaunchError(_unknown_deployment(platform, deployment), status=403)
        state = secrets.token_urlsafe(32)
        nonce = secrets.token_urlsafe(32)
        now = self.clock()
        async with self.database.write() as session:
            # Logins older than a day are of no use (a launch must follow within LOGIN_SECONDS).
            await session.execute(delete(LtiLogin).where(LtiLogin.created_at < now - timedelta(days=1)))
            session.add(LtiLogin(state=state, nonce=nonce, platform_id=platform.id, created_at=now))
        query = {
            "scope": "openid",
            "response_type": "id_token",
            "response_mode": "form_post",
            "prompt": "none",
            "client_id": platform.client_id,
            "redirect_uri": self.redirect_uri,
            "login_hint": login_hint,
            "state": state,
            "nonce": nonce,
        }
        if "lti_message_hint" in params:
            query["lti_message_hint"] = params["lti_message_hint"]
        separator = "&" if "?" in platform.auth_url else "?"
        return f"{platform.auth_url}{separator}{urlencode(query)}", state, platform

    # ---------------------------------------------------------------- launch

    async def launch(self, id_token: str, state: str, cookie_state: str | None) -> Launch:
        if not id_token or not state:
            raise LaunchError("The launch lacks its id_token or state; start the tool from the LMS again")
        if cookie_state is None:
            raise LaunchError(
                "This browser did not send back the cookie set at the login, so the launch cannot be tied "
                "to it (cookies blocked in the LMS frame?); allow cookies for this site or set the tool "
                "to open in a new window",
                status=401,
            )
        if not secrets.compare_digest(cookie_state.encode(), state.encode()):
            raise LaunchError(
                "The launch's state is not the one this browser started; start again", status=401
            )
        try:
            header = jwt.get_unverified_header(id_token)
            unverified = jwt.decode(id_token, options={"verify_signature": False})
        except jwt.PyJWTError as exc:
            raise LaunchError(f"The id_token cannot be read ({type(exc).__name__})") from None
        issuer = unverified.get("iss")
        audience = unverified.get("aud")
        audiences = (
            [audience] if isinstance(audience, str) else audience if isinstance(audience, list) else []
        )
        if not isinstance(issuer, str) or not audiences:
            raise LaunchError("The id_token has no iss or aud")
        azp = unverified.get("azp")
        client_id = azp if isinstance(azp, str) else audiences[0] if len(audiences) == 1 else None
        if client_id is None:
            raise LaunchError(
                "The id_token has several audiences and no azp to say which is ours", status=401
            )
        platform = await self._platform(issuer, client_id)
        if header.get("alg") != LTI_ALGORITHM:
            raise LaunchError(
                f"The id_token is signed with {header.get('alg')!r}; LTI requires RS256", status=401
            )
        kid = header.get("kid")
        key = await self.keys_of(platform).key_for(kid if isinstance(kid, str) else None)
        if key is None:
            raise LaunchError(
                f"The id_token is signed by a key (kid {str(kid)[:64]!r}) that the platform's JWKS "
                f"({platform.jwks_url}) does not list; check the JWKS URL of the registration",
                status=401,
            )
        now = self.clock()
        try:
            claims: dict[str, Any] = jwt.decode(
                id_token,
                key,
                algorithms=[LTI_ALGORITHM],
                audience=platform.client_id,
                issuer=platform.issuer,
                leeway=LEEWAY,
                options={"require": ["exp", "iat", "iss", "aud", "nonce", "sub"]},
            )
        except jwt.ExpiredSignatureError:
            raise LaunchError(
                "The launch has expired; start the tool from the LMS again", status=401
            ) from None
        except jwt.InvalidAudienceError:
            raise LaunchError(
                f"The id_token is not for this tool's client id {platform.client_id!r}", status=401
            ) from None
        except jwt.PyJWTError as exc:
            raise LaunchError(
                f"The id_token is not valid ({type(exc).__name__}: {str(exc)[:120]})", status=401
            ) from None
        if isinstance(azp, str) and azp != platform.client_id:
            raise LaunchError(
                f"The id_token's azp is not this tool's client id {platform.client_id!r}", status=401
            )
        iat = claims["iat"]
        # The token's times are the platform's wall clock, as PyJWT checks exp against it.
        if not isinstance(iat, int | float) or time.time() - iat > MAX_TOKEN_AGE:
            raise LaunchError(
                f"The launch was issued more than {MAX_TOKEN_AGE // 60} minutes ago; start the tool from "
                "the LMS again (if this repeats, check the platform's clock)",
                status=401,
            )
        # Single use of the state and its nonce, on every node: the conditional update wins once.
        async with self.database.write() as session:
            used = await session.execute(
                update(LtiLogin)
                .where(
                    LtiLogin.state == state,
                    LtiLogin.nonce == str(claims["nonce"]),
                    LtiLogin.platform_id == platform.id,
                    LtiLogin.used_at.is_(None),
                    LtiLogin.created_at > now - timedelta(seconds=LOGIN_SECONDS),
                )
                .values(used_at=now)
            )
            if used.rowcount != 1:  # type: ignore[attr-defined]
                raise LaunchError(
                    "This launch was already used, or its login is unknown or too old (a replayed or "
                    "forged launch); start the tool from the LMS again",
                    status=401,
                )
        return _read_launch(platform, claims)


def _unknown_deployment(platform: PlatformInfo, deployment: str) -> str:
    return (
        f"The deployment {deployment[:100]!r} of {platform.issuer} is not registered with this tool; "
        f"its administrator adds it with `attendance-live lti register --issuer {platform.issuer} "
        f"--client-id {platform.client_id} --deployment-id ...`"
    )


def _read_launch(platform: PlatformInfo, claims: dict[str, Any]) -> Launch:
    deployment = claims.get(CLAIM + "deployment_id")
    if not isinstance(deployment, str) or deployment not in platform.deployments:
        raise LaunchError(_unknown_deployment(platform, str(deployment)), status=403)
    message_type = claims.get(CLAIM + "message_type")
    if message_type != "LtiResourceLinkRequest":
        raise LaunchError(
            f"The message type {str(message_type)[:60]!r} is not supported; only resource link launches are"
        )
    version = claims.get(CLAIM + "version")
    if version != "1.3.0":
        raise LaunchError(f"The LTI version {str(version)[:20]!r} is not supported; only 1.3.0 is")
    roles = claims.get(CLAIM + "roles")
    if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
        raise LaunchError("The launch's roles claim is missing or not a list")
    context = claims.get(CLAIM + "context")
    if not isinstance(context, dict) or not isinstance(context.get("id"), str) or not context["id"]:
        raise LaunchError("The launch has no course context; add the tool to a course, not to a site page")
    subject = str(claims["sub"])
    if not subject or len(subject) > 255:
        raise LaunchError(
            "The launch's sub (the person) is empty or too long; anonymous launches are refused"
        )
    nrps = claims.get(NRPS_CLAIM)
    ags = claims.get(AGS_CLAIM)
    given = " ".join(str(claims[n]) for n in ("given_name", "family_name") if isinstance(claims.get(n), str))
    name = claims.get("name") if isinstance(claims.get("name"), str) else given
    email = claims.get("email") if isinstance(claims.get("email"), str) else None
    title = str(context.get("title") or context.get("label") or context["id"])
    label = str(context.get("label") or title)
    return Launch(
        platform=platform,
        deployment_id=deployment,
        subject=subject,
        name=(name or subject)[:200],
        email=email if email and len(email) <= 320 else None,
        roles=tuple(roles),
        context_id=context["id"][:255],
        context_title=title[:200],
        context_label=label[:64],
        memberships_url=nrps.get("context_memberships_url") if isinstance(nrps, dict) else None,
        lineitems_url=ags.get("lineitems") if isinstance(ags, dict) else None,
        ags_scopes=tuple(s for s in ags.get("scope", []) if isinstance(s, str))
        if isinstance(ags, dict)
        else (),
        claims=claims,
    )


def login_cookie_name() -> str:
    return "lti_state"
