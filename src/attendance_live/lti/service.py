"""What a launch and a roster sync do: users scoped by issuer, the context's course, roles,
the session token; NRPS applied with the roster import's semantics (``service.roster``).

* **Users**: ``lti-`` + the first 32 hex digits of SHA-256(issuer, newline, sub): the same
  person on every launch from that platform, never another platform's or the identity
  provider's user (whose ids never start with ``lti-`` unless the provider says so).
* **Courses**: ``lti-`` + SHA-256(issuer, context id); created by the first Instructor's
  launch (who becomes its teacher, the owner), its title and code kept equal to the context's
  title and label on every later instructor launch.
* **Roles** (LIS vocabulary, full URIs or the deprecated short names): Instructor,
  TeachingAssistant and Administrator manage; Learner is an approved student; anything else
  is refused. Every other manager of the context becomes a co-manager of the course
  (``service.managers``): role ``ta`` with a TeachingAssistant role, ``teacher`` otherwise; a
  co-manager who launches as a Learner is one no more.
* **Roster sync** (on an instructor launch at most every :data:`SYNC_EVERY` seconds, in the
  background, and from the dashboard's "Sync from LMS"): active Learners approved, active
  instructors and TAs made co-managers, members gone from the LMS (or Inactive/Deleted there)
  removed — students' records stay in the reports — and only for users of this platform:
  students who joined by a code, and co-managers added by hand, stay.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Final

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from attendance_live.auth.session_keys import SessionKeys
from attendance_live.auth.tokens import Identity
from attendance_live.db.engine import Database
from attendance_live.db.lti_models import LtiContext, LtiUser
from attendance_live.db.models import Course, Enrollment, User
from attendance_live.lti.launch import Launch, Launcher, LaunchError
from attendance_live.lti.platform import PlatformClient, PlatformError
from attendance_live.lti.registry import PlatformInfo, ToolKey, list_platforms, load_tool_key
from attendance_live.service.attendance import AttendanceService
from attendance_live.service.errors import Conflict, ServiceError
from attendance_live.service.roster_rows import EMAIL_RE, RosterRow
from attendance_live.timeutil import Clock, iso_z
from attendance_live.vocabulary import ManagerRole, Role

__all__ = [
    "LEARNER_ROLES",
    "LIS",
    "MANAGER_ROLES",
    "SYNC_EVERY",
    "TA_ROLES",
    "LandedLaunch",
    "LtiTool",
    "SyncSummary",
    "lti_course_id",
    "lti_user_id",
    "manager_role",
    "map_roles",
]

log = logging.getLogger(__name__)

SYNC_EVERY: Final = 300
LIS: Final = "http://purl.imsglobal.org/vocab/lis/v2/"
MANAGER_ROLES: Final = frozenset(
    {
        LIS + "membership#Instructor",
        LIS + "membership#Administrator",
        LIS + "membership/Instructor#TeachingAssistant",
        LIS + "institution/person#Administrator",
        LIS + "system/person#Administrator",
        "Instructor",
        "Administrator",
        "TeachingAssistant",
    }
)
TA_ROLES: Final = frozenset({LIS + "membership/Instructor#TeachingAssistant", "TeachingAssistant"})
LEARNER_ROLES: Final = frozenset({LIS + "membership#Learner", LIS + "membership/Learner#Learner", "Learner"})


def _digest(*parts: str) -> str:
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:32]


def lti_user_id(issuer: str, subject: str) -> str:
    return f"lti-{_digest(issuer, subject)}"


def lti_course_id(issuer: str, context_id: str) -> str:
    return f"lti-{_digest(issuer, context_id)}"


def map_roles(roles: tuple[str, ...] | list[str]) -> Role | None:
    """``teacher`` (manages), ``student`` (approved), or None (refused)."""
    if any(r in MANAGER_ROLES for r in roles):
        return "teacher"
    if any(r in LEARNER_ROLES for r in roles):
        return "student"
    return None


def manager_role(roles: tuple[str, ...] | list[str]) -> ManagerRole:
    """A co-manager's role for a manager's LIS roles: ``ta`` for a TeachingAssistant (who also
    carries the principal role Instructor, as the LIS vocabulary asks), ``teacher`` otherwise."""
    return "ta" if any(r in TA_ROLES for r in roles) else "teacher"


@dataclass(frozen=True, slots=True)
class LandedLaunch:
    token: str
    course_id: str
    role: Role
    platform: PlatformInfo


@dataclass(frozen=True, slots=True)
class SyncSummary:
    at: str
    members: int
    added: int
    changed: int
    removed: int
    unchanged: int
    instructors: int
    managers_added: int = 0  # co-managers (instructors, TAs) added or whose role changed
    managers_removed: int = 0

    def text(self) -> str:
        return (
            f"{self.members} members: {self.added} added, {self.removed} removed, "
            f"{self.changed - self.removed} changed, {self.unchanged} unchanged; co-teachers: "
            f"{self.managers_added} added or changed, {self.managers_removed} removed"
        )


class LtiTool:
    """The tool's state on one node: the launcher, the platform client, background syncs."""

    def __init__(
        self,
        database: Database,
        service: AttendanceService,
        sessions: SessionKeys,
        *,
        public_url: str,
        token_seconds: int,
        clock: Clock,
    ) -> None:
        self.database = database
        self.service = service
        self.sessions = sessions
        self.public_url = public_url.rstrip("/")
        self.token_seconds = token_seconds
        self.clock = clock
        self.launcher = Launcher(database, redirect_uri=f"{self.public_url}/lti/launch", clock=clock)
        self._key: ToolKey | None = None
        self.client = PlatformClient(self.tool_key)
        self._tasks: set[asyncio.Task[Any]] = set()
        self.grades: Any = None  # lti.grades.Grades, set by the app (it imports this module)

    async def tool_key(self) -> ToolKey:
        if self._key is None:
            self._key = await load_tool_key(self.database)
        return self._key

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.launcher.close()
        await self.client.close()

    async def settled(self) -> None:
        """Wait for the background syncs started so far (tests)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def _background(self, work: Callable[[], Coroutine[Any, Any, None]]) -> None:
        task: asyncio.Task[None] = asyncio.create_task(work())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ---------------------------------------------------------------- launch

    async def land(self, launch: Launch) -> LandedLaunch:
        """Apply a validated launch; a session token for the person, on the context's course."""
        role = map_roles(launch.roles)
        if role is None:
            raise LaunchError(
                "Your role in this LMS course is neither Instructor, TeachingAssistant, Administrator nor "
                "Learner, so attendance-live has nothing to show you here",
                status=403,
            )
        platform = launch.platform
        actor = Identity(lti_user_id(platform.issuer, launch.subject), launch.name, launch.email, role)
        course_id = lti_course_id(platform.issuer, launch.context_id)
        await self.service.remember_user(actor)
        await self.remember_subjects(platform.issuer, [launch.subject])
        async with self.database.read() as db:
            context = await db.get(LtiContext, (platform.id, launch.context_id))
            course = await db.get(Course, course_id)
        if role == "teacher":
            if course is None:
                with contextlib.suppress(Conflict):  # another launch created it a moment ago
                    await self.service.create_course(
                        actor, course_id=course_id, code=launch.context_label, title=launch.context_title
                    )
                async with self.database.read() as db:
                    course = await db.get(Course, course_id)
                assert course is not None
            if course.teacher_id != actor.user_id:
                # Another instructor or a TA of the context: a co-manager beside the owner.
                email = launch.email if launch.email and EMAIL_RE.match(launch.email) else None
                await self.service.put_manager(
                    await self._teacher(course),
                    course_id,
                    actor.user_id,
                    role=manager_role(launch.roles),
                    name=launch.name,
                    email=email,
                )
            if course.title != launch.context_title or course.code != launch.context_label:
                await self.service.update_course(
                    actor, course_id, code=launch.context_label, title=launch.context_title
                )
            context = await self._save_context(launch, course_id, context)
            if context.memberships_url and (
                context.last_sync_at is None
                or self.clock() - context.last_sync_at >= timedelta(seconds=SYNC_EVERY)
            ):
                self._background(lambda: self._sync_quietly(platform, course_id))
        else:
            if course is None or context is None:
                raise LaunchError(
                    "This course is not set up in attendance-live yet: its instructor opens the tool once "
                    "from the LMS first",
                    status=409,
                )
            teacher = await self._teacher(course)
            email = launch.email if launch.email and EMAIL_RE.match(launch.email) else None
            if actor.user_id in await self.service.co_managers(course_id):
                # The LMS says Learner now: no longer a co-manager, a student.
                await self.service.remove_manager(teacher, course_id, actor.user_id)
            try:
                await self.service.import_roster(
                    teacher,
                    course_id,
                    [RosterRow(1, actor.user_id, email, launch.name, "approved")],
                    dry_run=False,
                )
            except ServiceError as exc:
                raise LaunchError(
                    f"You could not be added to this course's roster: {exc}", status=409
                ) from None
        token = await self.sessions.mint_session_token(actor, role, self.token_seconds)
        return LandedLaunch(token, course_id, role, platform)

    async def remember_subjects(self, issuer: str, subjects: list[str]) -> None:
        """Keep each user's platform ``sub`` (grades are posted for it)."""
        rows = [{"user_id": lti_user_id(issuer, s), "issuer": issuer, "subject": s} for s in subjects]
        if not rows:
            return
        async with self.database.write() as db:
            for start in range(0, len(rows), 500):
                await db.execute(
                    self.database.upsert(LtiUser.__table__, rows[start : start + 500], key=[LtiUser.user_id])
                )

    async def _teacher(self, course: Course) -> Identity:
        async with self.database.read() as db:
            user = await db.get(User, course.teacher_id)
        name = user.name if user is not None else course.teacher_id
        return Identity(course.teacher_id, name, user.email if user is not None else None, "teacher")

    async def _save_context(self, launch: Launch, course_id: str, context: LtiContext | None) -> LtiContext:
        async with self.database.write() as db:
            row = await db.get(LtiContext, (launch.platform.id, launch.context_id))
            if row is None:
                row = LtiContext(
                    platform_id=launch.platform.id, context_id=launch.context_id, course_id=course_id
                )
                db.add(row)
            row.deployment_id = launch.deployment_id
            row.memberships_url = launch.memberships_url or row.memberships_url
            if launch.lineitems_url:
                row.lineitems_url = launch.lineitems_url
                row.ags_scopes = " ".join(launch.ags_scopes)
            try:
                await db.flush()
            except IntegrityError:
                raise LaunchError(
                    "Two launches set this course up at once; open the tool again", status=409
                ) from None
            db.expunge(row)
            return row

    # ------------------------------------------------------------ roster sync

    async def _sync_quietly(self, platform: PlatformInfo, course_id: str) -> None:
        try:
            await self.sync_roster(course_id)
        except PlatformError as exc:
            log.warning("LTI roster sync of course %s from %s failed: %s", course_id, platform.issuer, exc)
        except Exception:
            log.exception("LTI roster sync of course %s failed", course_id)

    async def context_of(self, course_id: str) -> tuple[LtiContext, PlatformInfo] | None:
        async with self.database.read() as db:
            context = (
                await db.scalars(select(LtiContext).where(LtiContext.course_id == course_id))
            ).one_or_none()
        if context is None:
            return None
        platform = next((p for p in await list_platforms(self.database) if p.id == context.platform_id), None)
        return (context, platform) if platform is not None else None

    async def sync_roster(self, course_id: str) -> SyncSummary:
        """Read the context's members from NRPS and apply them (see the module docstring)."""
        found = await self.context_of(course_id)
        if found is None or not found[0].memberships_url:
            raise PlatformError(
                "this course was not launched from an LMS that offers its roster (no NRPS endpoint in the "
                "launch); enable 'Names and roles' for the tool in the LMS and launch it again"
            )
        context, platform = found
        assert context.memberships_url is not None
        members = await self.client.members(platform, context.memberships_url)
        async with self.database.read() as db:
            course = await db.get(Course, course_id)
            assert course is not None
            enrolled = {
                uid: status
                for uid, status in (
                    await db.execute(
                        select(Enrollment.user_id, Enrollment.status).where(Enrollment.course_id == course_id)
                    )
                ).all()
            }
        rows: list[RosterRow] = []
        seen: set[str] = set()
        managers: dict[str, tuple[ManagerRole, str | None, str | None]] = {}  # active co-managers
        instructors = 0
        for member in members:
            subject = member.get("user_id")
            if not isinstance(subject, str) or not subject:
                continue
            user_id = lti_user_id(platform.issuer, subject)
            roles = [r for r in member.get("roles", []) if isinstance(r, str)]
            role = map_roles(roles)
            active = member.get("status", "Active") == "Active"
            name, email = _name_and_email(member)
            if role == "teacher" or user_id == course.teacher_id:
                instructors += 1
                if active and user_id != course.teacher_id:
                    managers[user_id] = (manager_role(roles), name, email)
                continue
            if role != "student" or user_id in seen:
                continue
            if not active and user_id not in enrolled:
                continue
            seen.add(user_id)
            rows.append(
                RosterRow(
                    len(rows) + 1,
                    user_id,
                    email,
                    name[:200] if name else None,
                    "approved" if active else "removed",
                )
            )
        # Co-managers first: one who is a Learner now is then free to enroll, and a new one's
        # enrollment ends with the change (so it is not counted as removed below).
        teacher = await self._teacher(course)
        managers_added, managers_removed = await self._sync_managers(teacher, course_id, managers)
        gone = [
            uid
            for uid in enrolled
            if uid.startswith("lti-") and uid not in seen and uid != course.teacher_id and uid not in managers
        ]
        rows.extend(RosterRow(len(rows) + 1 + i, uid, None, None, "removed") for i, uid in enumerate(gone))
        removed = sum(1 for r in rows if r.status == "removed" and r.user_id in enrolled)
        await self.remember_subjects(
            platform.issuer,
            [m["user_id"] for m in members if isinstance(m.get("user_id"), str) and m["user_id"]],
        )
        result = await self.service.import_roster(teacher, course_id, rows, dry_run=False)
        now = self.clock()
        summary = SyncSummary(
            at=iso_z(now) or "",
            members=len(members),
            added=result.added,
            changed=result.changed,
            removed=removed,
            unchanged=result.unchanged,
            instructors=instructors,
            managers_added=managers_added,
            managers_removed=managers_removed,
        )
        async with self.database.write() as db:
            row = await db.get(LtiContext, (context.platform_id, context.context_id))
            if row is not None:
                row.last_sync_at = now
                row.last_sync_summary = json.dumps(_asdict(summary))
        log.info("LTI roster sync of course %s from %s: %s", course_id, platform.issuer, summary.text())
        return summary

    async def _sync_managers(
        self, teacher: Identity, course_id: str, wanted: dict[str, tuple[ManagerRole, str | None, str | None]]
    ) -> tuple[int, int]:
        """Make the platform's active instructors and TAs the course's co-managers, and remove this
        platform's users (``lti-``) who are none any more; how many were added or changed, removed."""
        current = await self.service.co_managers(course_id)
        added = removed = 0
        for user_id in sorted(current):
            if user_id.startswith("lti-") and user_id not in wanted:
                await self.service.remove_manager(teacher, course_id, user_id)
                removed += 1
        for user_id, (role, name, email) in sorted(wanted.items()):
            if current.get(user_id) != role:
                email = email if email and EMAIL_RE.match(email) else None
                await self.service.put_manager(teacher, course_id, user_id, role=role, name=name, email=email)
                added += 1
        return added, removed


def _name_and_email(member: dict[str, Any]) -> tuple[str | None, str | None]:
    """A NRPS member's display name (at most 200 characters) and email, when it gives them."""
    name = member.get("name") if isinstance(member.get("name"), str) else None
    if name is None:
        parts = [member.get(k) for k in ("given_name", "family_name")]
        name = " ".join(p for p in parts if isinstance(p, str)) or None
    email = member.get("email") if isinstance(member.get("email"), str) else None
    return name[:200] if name else None, email


def _asdict(summary: SyncSummary) -> dict[str, Any]:
    return {name: getattr(summary, name) for name in SyncSummary.__slots__}
