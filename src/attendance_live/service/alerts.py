"""Absence follow-up: per-course thresholds, alerts that fire once per crossing, and who is told.

A course's managers set its rules (``absence_rules``):

* ``absences``: at least ``count`` absences;
* ``rate``: an attendance rate below ``below`` (0 to 1) after at least ``count`` sessions;
* ``streak``: ``count`` absences in a row (the student's latest sessions).

Counted over the course's ended sessions, as the course report counts them (``service.reports``):
the rate is (present + late) / (sessions − excused); a streak is broken by any record that is not
``absent``.

When they are looked at: ``Alerts.process`` (every node, woken by its own commits and by a poll)
reads the outbox after the ``alerts`` cursor. A session's end looks at every student of its roster;
a record that changed in a session already ended looks at that student. In one transaction it
compares each student with each rule, keeps whether the student is past it (``absence_states``),
writes an alert only when that turns true (once per crossing: a student who stays past it is not
told again; one who gets back under it and crosses again is), appends the alert to the outbox (kind
``absenceAlert``: the socket event ``absenceAlert`` to the student's, the teacher's and the
co-managers' sockets, and the
``absence.alert`` webhook) and moves the cursor with a conditional update, so two nodes cannot both
fire it. After the commit, with ``SMTP_URL`` set, the student and the teacher get a short email.
"""

from __future__ import annotations

import asyncio
import logging
import smtplib
import uuid
from collections.abc import Sequence
from typing import Any, Final

import orjson
from pydantic import BaseModel
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.engine import Connection

from attendance_live.auth.tokens import Identity
from attendance_live.db.models import (
    AttendanceRecord,
    AttendanceSession,
    Course,
    CourseManager,
    Enrollment,
    OutboxEvent,
    User,
)
from attendance_live.db.term_models import AbsenceAlert, AbsenceRule, AbsenceState, TermCursor
from attendance_live.service.absence_rules import (
    RuleSpec,
    RuleView,
    alert_message,
    has_crossed,
    measure,
    rule_view,
)
from attendance_live.service.attendance import AttendanceService
from attendance_live.service.errors import Forbidden, InvalidInput, NotFound
from attendance_live.service.mail import Mailer
from attendance_live.service.outbox import RECORD, OutboxRow, PendingRow
from attendance_live.timeutil import iso_z

__all__ = ["ABSENCE_ALERT_KIND", "CURSOR", "MAX_RULES", "PROCESS_BATCH", "AlertView", "Alerts"]

log = logging.getLogger(__name__)

CURSOR: Final = "alerts"
# The outbox kind of an alert (the relay sends it as the socket event of the same name).
ABSENCE_ALERT_KIND: Final = "absenceAlert"
PROCESS_BATCH: Final = 200
MAX_RULES: Final = 10


class AlertView(BaseModel):
    id: str
    course_id: str
    course_code: str
    user_id: str
    name: str
    teacher_id: str
    # The course's co-managers when the alert fired: their sockets are told too.
    manager_ids: list[str] = []
    rule: RuleView
    absences: int
    sessions: int
    attendance_rate: float | None
    streak: int
    session_id: str | None
    message: str
    # The same, addressed to the student (its dashboard's notice).
    student_message: str = ""
    created_at: str
    acknowledged_at: str | None = None
    acknowledged_by: str | None = None


class Alerts:
    """Rules, the processor of the outbox, the alert list; see the module docstring."""

    def __init__(
        self, service: AttendanceService, mailer: Mailer, *, dashboard_url: str | None = None
    ) -> None:
        self.service = service
        self.database = service.database
        self.mailer = mailer
        self.dashboard_url = dashboard_url
        self._mails: set[asyncio.Task[None]] = set()

    # ------------------------------------------------------------ rules (managers)

    async def set_rules(self, actor: Identity, course_id: str, rules: Sequence[RuleSpec]) -> list[RuleView]:
        """Replace the course's rules (and so forget who was past the old ones)."""
        if len(rules) > MAX_RULES:
            raise InvalidInput(f"{len(rules)} rules given; a course has at most {MAX_RULES}")
        for rule in rules:
            if rule.kind == "rate" and rule.below is None:
                raise InvalidInput(
                    "a rate rule needs below, the rate (0 to 1) under which it fires, e.g. 0.8"
                )
            if rule.kind != "rate" and rule.below is not None:
                raise InvalidInput(f"below applies to rate rules only; remove it from the {rule.kind} rule")
        now = self.service.clock()
        rows = [
            AbsenceRule(
                id=uuid.uuid4().hex,
                course_id=course_id,
                kind=r.kind,
                count=r.count,
                below=r.below,
                created_at=now,
            )
            for r in rules
        ]
        async with self.database.write() as db:
            await self.service.manager_access(db, actor, course_id)
            await db.execute(delete(AbsenceRule).where(AbsenceRule.course_id == course_id))
            db.add_all(rows)
            if await db.get(TermCursor, CURSOR) is None:
                last = (await db.execute(select(func.max(OutboxEvent.id)))).scalar() or 0
                await db.execute(
                    self.database.upsert(
                        TermCursor, {"name": CURSOR, "position": last}, key=[TermCursor.name]
                    )
                )
        return [rule_view(r) for r in rows]

    async def list_rules(self, actor: Identity, course_id: str) -> list[RuleView]:
        async with self.database.read() as db:
            await self.service.member_access(db, actor, course_id)
            rows = (
                await db.execute(
                    select(AbsenceRule)
                    .where(AbsenceRule.course_id == course_id)
                    .order_by(AbsenceRule.created_at)
                )
            ).scalars()
            return [rule_view(r) for r in rows]

    # ------------------------------------------------------------ alerts (managers; a student sees its own)

    async def list_alerts(
        self, actor: Identity, course_id: str, *, open_only: bool = True
    ) -> list[AlertView]:
        query = (
            select(AbsenceAlert)
            .where(AbsenceAlert.course_id == course_id)
            .order_by(AbsenceAlert.created_at.desc())
        )
        if open_only:
            query = query.where(AbsenceAlert.acknowledged_at.is_(None))
        async with self.database.read() as db:
            access = await self.service.member_access(db, actor, course_id)
            if not access.manages:
                query = query.where(AbsenceAlert.user_id == actor.user_id)
            return [self._alert_view(a) for a in (await db.execute(query.limit(500))).scalars()]

    async def acknowledge(self, actor: Identity, alert_id: str) -> AlertView:
        now = self.service.clock()
        async with self.database.write() as db:
            alert = await db.get(AbsenceAlert, alert_id)
            if alert is None:
                raise NotFound(f"Alert {alert_id!r} not found")
            try:
                await self.service.manager_access(db, actor, alert.course_id)
            except NotFound:
                raise NotFound(f"Alert {alert_id!r} not found") from None
            except Forbidden:
                raise Forbidden("Only the course's teacher or an admin can acknowledge an alert") from None
            await db.execute(
                update(AbsenceAlert)
                .where(AbsenceAlert.id == alert_id, AbsenceAlert.acknowledged_at.is_(None))
                .values(acknowledged_at=now, acknowledged_by=actor.user_id)
                .execution_options(synchronize_session=False)
            )
            await db.refresh(alert)
            return self._alert_view(alert)

    @staticmethod
    def _alert_view(alert: AbsenceAlert) -> AlertView:
        return AlertView.model_validate(
            {
                **orjson.loads(alert.payload),
                "acknowledged_at": iso_z(alert.acknowledged_at),
                "acknowledged_by": alert.acknowledged_by,
            }
        )

    # ------------------------------------------------------------ the processor (every node)

    async def process(self) -> int:
        """Look at what ended or changed since the cursor; the number of alerts fired."""
        fired = 0
        while await self.database.run_read(lambda conn: TermCursor.behind(conn, CURSOR)):
            try:
                rows, alerts = await self.database.run_write(self._process_batch)
            except _Raced:
                return fired
            for sink in self.service.row_sinks:
                sink(rows)
            for alert in alerts:
                self._mail(alert)
            fired += len(alerts)
        return fired

    async def close(self) -> None:
        if self._mails:
            await asyncio.gather(*self._mails, return_exceptions=True)

    def _process_batch(self, conn: Connection) -> tuple[list[OutboxRow], list[AlertView]]:
        cursor = conn.execute(select(TermCursor.position).where(TermCursor.name == CURSOR)).scalar()
        if cursor is None:
            return [], []  # no rule was ever set
        outbox = OutboxEvent.__table__
        # Every kind, in position order: positions are gap-free, so the cursor never passes a row
        # that is not yet visible; the kinds that matter are picked here.
        rows = conn.execute(
            select(outbox.c.id, outbox.c.course_id, outbox.c.kind, outbox.c.payload)
            .where(outbox.c.id > cursor)
            .order_by(outbox.c.id)
            .limit(PROCESS_BATCH)
        ).all()
        if not rows:
            return [], []
        # course -> student -> the session after which they are looked at
        targets: dict[str, dict[str, str]] = {}
        for _position, course_id, kind, raw in rows:
            if kind not in ("courseSessionEnded", RECORD):
                continue
            payload = orjson.loads(raw)
            session_id = payload["session_id"]
            users: list[str]
            if kind == "courseSessionEnded":
                users = list(
                    conn.execute(
                        select(AttendanceRecord.user_id).where(AttendanceRecord.session_id == session_id)
                    ).scalars()
                )
            else:
                status = conn.execute(
                    select(AttendanceSession.status).where(AttendanceSession.id == session_id)
                ).scalar()
                users = [payload["user_id"]] if status == "ended" else []
            for user_id in users:
                targets.setdefault(course_id, {})[user_id] = session_id
        alerts: list[AlertView] = []
        now = self.service.clock()
        for course_id, students in targets.items():
            alerts.extend(self._evaluate(conn, course_id, students, now))
        committed = self.service.outbox.append(
            conn, [PendingRow(a.course_id, ABSENCE_ALERT_KIND, a.model_dump()) for a in alerts], now
        )
        moved = conn.execute(
            update(TermCursor)
            .where(TermCursor.name == CURSOR, TermCursor.position == cursor)
            .values(position=rows[-1][0])
        )
        if moved.rowcount != 1:
            raise _Raced()  # another node looked at these rows first: roll back ours
        return committed, alerts

    def _evaluate(self, conn: Connection, course_id: str, users: dict[str, str], now: Any) -> list[AlertView]:
        rules = [
            RuleView(id=i, kind=k, count=c, below=b)
            for i, k, c, b in conn.execute(
                select(AbsenceRule.id, AbsenceRule.kind, AbsenceRule.count, AbsenceRule.below)
                .where(AbsenceRule.course_id == course_id)
                .order_by(AbsenceRule.created_at, AbsenceRule.id)
            )
        ]
        if not rules:
            return []
        course = conn.execute(select(Course.code, Course.teacher_id).where(Course.id == course_id)).one()
        co_managers = sorted(
            conn.execute(select(CourseManager.user_id).where(CourseManager.course_id == course_id)).scalars()
        )
        # Only approved students are followed up (not a teacher marked in a roster, not a removed one).
        approved = set(
            conn.execute(
                select(Enrollment.user_id).where(
                    Enrollment.course_id == course_id,
                    Enrollment.status == "approved",
                    Enrollment.user_id.in_(list(users)),
                )
            ).scalars()
        )
        if not approved:
            return []
        history: dict[str, list[str]] = {u: [] for u in approved}
        for user_id, status in conn.execute(
            select(AttendanceRecord.user_id, AttendanceRecord.status)
            .join(AttendanceSession, AttendanceSession.id == AttendanceRecord.session_id)
            .where(
                AttendanceSession.course_id == course_id,
                AttendanceSession.status == "ended",
                AttendanceRecord.user_id.in_(list(approved)),
            )
            .order_by(AttendanceSession.started_at, AttendanceSession.id)
        ):
            history[user_id].append(status)
        names = dict(conn.execute(select(User.id, User.name).where(User.id.in_(list(approved)))).all())
        states = {
            (rule_id, user_id): crossed
            for rule_id, user_id, crossed in conn.execute(
                select(AbsenceState.rule_id, AbsenceState.user_id, AbsenceState.crossed).where(
                    AbsenceState.rule_id.in_([r.id for r in rules]),
                    AbsenceState.user_id.in_(list(approved)),
                )
            )
        }
        fired: list[AlertView] = []
        for user_id in sorted(approved):
            metrics = measure(history[user_id])
            name = names.get(user_id) or user_id
            for rule in rules:
                crossed = has_crossed(rule, metrics)
                was = states.get((rule.id, user_id))
                if was != crossed:
                    conn.execute(
                        self.database.upsert(
                            AbsenceState,
                            {"rule_id": rule.id, "user_id": user_id, "crossed": crossed},
                            key=[AbsenceState.rule_id, AbsenceState.user_id],
                            update=lambda excluded: {"crossed": excluded.crossed},
                        )
                    )
                if not crossed or was:
                    continue
                rate = metrics.rate
                alert = AlertView(
                    id=uuid.uuid4().hex,
                    course_id=course_id,
                    course_code=course.code,
                    user_id=user_id,
                    name=name,
                    teacher_id=course.teacher_id,
                    manager_ids=co_managers,
                    rule=rule,
                    absences=metrics.absences,
                    sessions=metrics.sessions,
                    attendance_rate=None if rate is None else round(rate, 4),
                    streak=metrics.streak,
                    session_id=users[user_id],
                    message=alert_message(rule, metrics, name, course.code),
                    created_at=iso_z(now) or "",
                )
                alert.student_message = _second_person(alert)
                conn.execute(
                    insert(AbsenceAlert).values(
                        id=alert.id,
                        course_id=course_id,
                        user_id=user_id,
                        rule_id=rule.id,
                        payload=alert.model_dump_json(),
                        created_at=now,
                    )
                )
                fired.append(alert)
        return fired

    # ------------------------------------------------------------ email

    def _mail(self, alert: AlertView) -> None:
        if not self.mailer.enabled:
            return
        task = asyncio.create_task(self._send_mails(alert), name=f"alert-mail:{alert.id}")
        self._mails.add(task)
        task.add_done_callback(self._mails.discard)

    async def _send_mails(self, alert: AlertView) -> None:
        async with self.database.read() as db:
            people = {
                u.id: u
                for u in (
                    await db.execute(select(User).where(User.id.in_([alert.user_id, alert.teacher_id])))
                ).scalars()
            }
        link = f"{self.dashboard_url}/courses/{alert.course_id}" if self.dashboard_url else None
        student, teacher = people.get(alert.user_id), people.get(alert.teacher_id)
        teacher_name = teacher.name if teacher is not None else "your teacher"
        letters = []
        if student is not None and student.email:
            lines = [
                f"Hello {student.name or alert.name},",
                "",
                f"This is a note from the attendance system of {alert.course_code}. {_second_person(alert)}",
                "",
                f"If something is keeping you away, please have a word with {teacher_name}; "
                "they will be glad to help.",
            ]
            if link:
                lines += ["", f"Your attendance record: {link}"]
            letters.append((student.email, f"{alert.course_code}: your attendance", lines))
        if teacher is not None and teacher.email:
            lines = [f"Hello {teacher.name},", "", alert.message]
            if link:
                lines += ["", f"The course's open alerts, where you can acknowledge this one: {link}"]
            letters.append((teacher.email, f"{alert.course_code}: absence alert for {alert.name}", lines))
        for to, subject, lines in letters:
            try:
                await self.mailer.send(to, subject, "\n".join([*lines, "", "-- attendance-live", ""]))
            except (OSError, smtplib.SMTPException) as exc:
                log.warning("could not email absence alert %s: %s", alert.id, type(exc).__name__)


def _second_person(alert: AlertView) -> str:
    kind = alert.rule.kind
    if kind == "absences":
        return f"You have been absent from {alert.absences} of its sessions so far."
    if kind == "streak":
        return f"You have missed its last {alert.streak} sessions in a row."
    return f"Your attendance is {(alert.attendance_rate or 0):.0%} after {alert.sessions} sessions."


class _Raced(Exception):
    """Another node moved the cursor first."""
