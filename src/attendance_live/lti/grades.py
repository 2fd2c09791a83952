"""Grades to the LMS (AGS 2.0): after every session ends, each student's attendance rate.

Driven from the outbox, as webhooks are, so that nothing is lost and nothing blocks the end
of a session:

1. :meth:`Grades.enqueue` reads the ``courseSessionEnded`` rows after the ``ags`` cursor
   (``lti_cursors``) and, in one transaction, inserts an ``lti_score_posts`` row for each
   that belongs to a course launched from a platform that granted the AGS scopes, and moves
   the cursor with a conditional update: two nodes reading the same rows cannot both commit.
2. :meth:`Grades.send_due` claims each due post with a conditional update (a lease of
   :data:`LEASE_SECONDS`), finds or creates the course's one "Attendance" line item
   (0–100, ``resourceId`` = the course id; its URL is kept), and posts one score per student
   of the platform with a rate (``activityProgress: Submitted``, ``gradingProgress:
   FullyGraded``, ``scoreGiven`` = the rate × 100 over all the course's ended sessions, as the
   course report computes it). A failure keeps the post pending with its error (the teacher
   sees it, ``GET /api/courses/{id}/lti``) and retries after :data:`RETRY_SECONDS`
   (doubling, at most an hour); after :data:`MAX_ATTEMPTS` it is ``failed``. The rates are
   read again at each attempt, so a retry posts what is true then.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from datetime import timedelta
from typing import Any, Final

from sqlalchemy import func, select, update

from attendance_live.auth.tokens import Identity
from attendance_live.db.lti_models import LtiContext, LtiCursor, LtiScorePost, LtiUser
from attendance_live.db.models import Course, OutboxEvent, User
from attendance_live.lti.platform import PlatformError
from attendance_live.lti.service import LtiTool
from attendance_live.service.events import DomainEvent, SessionEnded
from attendance_live.service.reports import CourseReports
from attendance_live.timeutil import iso_z

__all__ = [
    "CURSOR",
    "LEASE_SECONDS",
    "LINEITEM_SCOPE",
    "MAX_ATTEMPTS",
    "RETRY_SECONDS",
    "SCORE_SCOPE",
    "Grades",
]

log = logging.getLogger(__name__)

CURSOR: Final = "ags"
LEASE_SECONDS: Final = 120
RETRY_SECONDS: Final = 30
MAX_ATTEMPTS: Final = 12
SCORE_SCOPE: Final = "https://purl.imsglobal.org/spec/lti-ags/scope/score"
LINEITEM_SCOPE: Final = "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem"


class Grades:
    def __init__(self, tool: LtiTool, reports: CourseReports, *, poll_seconds: float = 5.0) -> None:
        self.tool = tool
        self.database = tool.database
        self.reports = reports
        self.poll_seconds = poll_seconds
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()

    # -------------------------------------------------------------- the loop

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="lti-grades")

    def wake(self) -> None:
        self._wake.set()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            try:
                await self.run_pass()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("the LTI grade passback failed a pass; it tries again")
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll_seconds)

    async def run_pass(self) -> int:
        """Enqueue what ended, then send what is due; returns how many posts were done.

        A server with no course that grades to an LMS only reads one row per pass.
        """
        async with self.database.read() as db:
            graded = (
                await db.execute(
                    select(LtiContext.course_id).where(LtiContext.lineitems_url.is_not(None)).limit(1)
                )
            ).first()
        if graded is None:
            return 0
        while await self.enqueue():
            pass
        return await self.send_due()

    # -------------------------------------------------------------- enqueue

    async def on_event(self, event: DomainEvent) -> None:
        if isinstance(event, SessionEnded):
            self.wake()

    async def enqueue(self, batch: int = 200) -> int:
        """Turn the next outbox rows into score posts; how many rows were read (0: none left)."""
        try:
            return await self._enqueue(batch)
        except _Raced:
            return 0  # another node took these rows; the next pass goes on from its cursor

    async def _enqueue(self, batch: int) -> int:
        async with self.database.write() as db:
            position = (
                await db.execute(select(LtiCursor.position).where(LtiCursor.name == CURSOR))
            ).scalar_one_or_none()
            if position is None:  # the first pass anywhere; two nodes at once: one row
                await db.execute(
                    self.database.upsert(
                        LtiCursor.__table__, {"name": CURSOR, "position": 0}, key=[LtiCursor.name]
                    )
                )
                position = 0
            rows = (
                await db.execute(
                    select(OutboxEvent.id, OutboxEvent.course_id, OutboxEvent.kind, OutboxEvent.payload)
                    .where(OutboxEvent.id > position, OutboxEvent.kind == "courseSessionEnded")
                    .order_by(OutboxEvent.id)
                    .limit(batch)
                )
            ).all()
            if not rows:
                return 0
            ended = [
                (cid, json.loads(p).get("session_id"))
                for _, cid, kind, p in rows
                if kind == "courseSessionEnded"
            ]
            graded: set[str] = set()
            if ended:
                graded = set(
                    (
                        await db.execute(
                            select(LtiContext.course_id).where(
                                LtiContext.course_id.in_({cid for cid, _ in ended}),
                                LtiContext.lineitems_url.is_not(None),
                            )
                        )
                    ).scalars()
                )
            now = self.tool.clock()
            for course_id, session_id in ended:
                if course_id in graded and isinstance(session_id, str):
                    db.add(
                        LtiScorePost(
                            course_id=course_id,
                            session_id=session_id,
                            status="pending",
                            attempts=0,
                            next_attempt_at=now,
                            created_at=now,
                        )
                    )
            moved = await db.execute(
                update(LtiCursor)
                .where(LtiCursor.name == CURSOR, LtiCursor.position == position)
                .values(position=rows[-1][0])
            )
            if moved.rowcount != 1:  # type: ignore[attr-defined]
                raise _Raced  # another node enqueued these rows: roll back
        return len(rows)

    # ----------------------------------------------------------------- send

    async def send_due(self) -> int:
        now = self.tool.clock()
        async with self.database.read() as db:
            due = (
                await db.execute(
                    select(LtiScorePost.id, LtiScorePost.next_attempt_at)
                    .where(LtiScorePost.status == "pending", LtiScorePost.next_attempt_at <= now)
                    .order_by(LtiScorePost.id)
                    .limit(50)
                )
            ).all()
        done = 0
        for post_id, next_at in due:
            async with self.database.write() as db:
                claimed = await db.execute(
                    update(LtiScorePost)
                    .where(
                        LtiScorePost.id == post_id,
                        LtiScorePost.status == "pending",
                        LtiScorePost.next_attempt_at == next_at,
                    )
                    .values(next_attempt_at=now + timedelta(seconds=LEASE_SECONDS))
                )
                if claimed.rowcount != 1:  # type: ignore[attr-defined]
                    continue
            done += await self._attempt(post_id)
        return done

    async def _attempt(self, post_id: int) -> int:
        async with self.database.read() as db:
            post = await db.get(LtiScorePost, post_id)
            assert post is not None
            course_id, attempts = post.course_id, post.attempts + 1
        error: str | None = None
        try:
            posted = await self._post_scores(course_id)
        except PlatformError as exc:
            error = str(exc)[:1000]
        now = self.tool.clock()
        async with self.database.write() as db:
            row = await db.get(LtiScorePost, post_id)
            assert row is not None
            row.attempts = attempts
            if error is None:
                row.status, row.done_at, row.last_error = "done", now, None
                log.info("LTI grades of course %s posted (%d scores)", course_id, posted)
                return 1
            row.last_error = error
            if attempts >= MAX_ATTEMPTS:
                row.status = "failed"
                log.warning(
                    "LTI grades of course %s failed for good after %d attempts: %s",
                    course_id,
                    attempts,
                    error,
                )
            else:
                delay = min(RETRY_SECONDS * 2 ** (attempts - 1), 3600)
                row.next_attempt_at = now + timedelta(seconds=delay)
                log.warning(
                    "LTI grades of course %s not posted (attempt %d, next in %d s): %s",
                    course_id,
                    attempts,
                    delay,
                    error,
                )
        return 0

    async def _post_scores(self, course_id: str) -> int:
        found = await self.tool.context_of(course_id)
        if found is None or not found[0].lineitems_url:
            return 0
        context, platform = found
        assert context.lineitems_url is not None
        scopes = tuple(sorted({LINEITEM_SCOPE, SCORE_SCOPE}))
        lineitem = context.lineitem_url
        if lineitem is None:
            lineitem = await self.tool.client.ensure_lineitem(
                platform, context.lineitems_url, scopes, resource_id=course_id
            )
            async with self.database.write() as db:
                row = await db.get(LtiContext, (context.platform_id, context.context_id))
                if row is not None:
                    row.lineitem_url = lineitem
        async with self.database.read() as db:
            course = await db.get(Course, course_id)
            assert course is not None
            teacher = await db.get(User, course.teacher_id)
            subjects = dict(
                (
                    await db.execute(
                        select(LtiUser.user_id, LtiUser.subject).where(LtiUser.issuer == platform.issuer)
                    )
                ).all()
            )
        actor = Identity(course.teacher_id, teacher.name if teacher else course.teacher_id, None, "teacher")
        report = await self.reports.course_report(actor, course_id)
        timestamp = iso_z(self.tool.clock())
        posted = 0
        for student in report.students:
            subject = subjects.get(student.user_id)
            if subject is None or student.attendance_rate is None:
                continue
            score: dict[str, Any] = {
                "userId": subject,
                "scoreGiven": round(student.attendance_rate * 100, 2),
                "scoreMaximum": 100,
                "activityProgress": "Submitted",
                "gradingProgress": "FullyGraded",
                "timestamp": timestamp,
                "comment": f"attended {student.present + student.late} of "
                f"{student.sessions - student.excused} sessions",
            }
            await self.tool.client.post_score(platform, lineitem, scopes, score)
            posted += 1
        return posted

    async def state(self, course_id: str) -> dict[str, Any]:
        """What the teacher sees: pending, failed and the last error, the last success."""
        async with self.database.read() as db:
            counts = dict(
                (
                    await db.execute(
                        select(LtiScorePost.status, func.count())
                        .where(LtiScorePost.course_id == course_id)
                        .group_by(LtiScorePost.status)
                    )
                ).all()
            )
            last_error = (
                await db.execute(
                    select(LtiScorePost.last_error)
                    .where(LtiScorePost.course_id == course_id, LtiScorePost.last_error.is_not(None))
                    .order_by(LtiScorePost.id.desc())
                    .limit(1)
                )
            ).scalar_one_or_none()
            last_done = (
                await db.execute(
                    select(func.max(LtiScorePost.done_at)).where(LtiScorePost.course_id == course_id)
                )
            ).scalar_one_or_none()
        return {
            "pending": int(counts.get("pending", 0)),
            "failed": int(counts.get("failed", 0)),
            "done": int(counts.get("done", 0)),
            "last_error": last_error,
            "last_posted_at": iso_z(last_done) if last_done else None,
        }


class _Raced(Exception):
    pass
