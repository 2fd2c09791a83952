"""Reports: one session's roster as CSV, for the course's teacher and admins.

Columns ``user_id,name,email,status,checked_in_at,marked_by,remarks``; a cell
that a spreadsheet would run as a formula is prefixed with ``'``.
"""

from __future__ import annotations

import csv
import io

from sqlalchemy import select

from attendance_live.auth.tokens import Identity
from attendance_live.db.models import AttendanceRecord, User
from attendance_live.service.errors import Forbidden
from attendance_live.service.reads import Reads
from attendance_live.service.views import SessionView
from attendance_live.vocabulary import PRESENT_STATUSES

__all__ = ["CSV_FORMULA_PREFIXES", "Reports", "csv_safe"]

CSV_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


class Reports(Reads):
    """Session reports; see the module docstring."""

    async def report_csv(self, actor: Identity, session_id: str) -> tuple[SessionView, str]:
        """The session (for naming the file) and its roster as CSV text."""
        async with self.database.read() as db:
            _, access = await self._session_access(db, actor, session_id)
            if not access.manages:
                raise Forbidden("Only the course's teacher or an admin can download the report")
            view = await self._session_view(db, session_id, access, actor)
            emails = dict(
                (
                    await db.execute(
                        select(User.id, User.email)
                        .join(AttendanceRecord, AttendanceRecord.user_id == User.id)
                        .where(AttendanceRecord.session_id == session_id)
                    )
                ).all()
            )
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(["user_id", "name", "email", "status", "checked_in_at", "marked_by", "remarks"])
        for record in view.records:
            checked_in = record.marked_at if record.status in PRESENT_STATUSES else ""
            writer.writerow(
                [
                    csv_safe(record.user_id),
                    csv_safe(record.name),
                    csv_safe(emails.get(record.user_id) or ""),
                    record.status,
                    checked_in or "",
                    csv_safe(record.marked_by or ""),
                    csv_safe(record.remarks or ""),
                ]
            )
        return view, out.getvalue()


def csv_safe(value: str) -> str:
    """Keep spreadsheet programs from running a cell as a formula."""
    return "'" + value if value.startswith(CSV_FORMULA_PREFIXES) else value
