"""The audit trail of attendance records: who changed a record, when, how, and from where.

Every change of a record writes one ``record_changes`` row in the same
transaction (the check-in in ``service.checkin``, a teacher's mark in
``service.sessions``). A check-in also looks for an earlier check-in of
*another* student in the same session from the same address or the same
device id, and keeps that student's id on the row: the teacher's roster shows
the flag; the check-in itself is not refused (a lecture hall behind one NAT
shares an address, so an address flag is a hint, a device flag a stronger one).

The teacher's views show each record's last change (``RecordAudit``), with the
flags of the student's own check-in carried along if a teacher changed the
record afterwards.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import String, bindparam, insert, or_, select
from sqlalchemy.engine import Connection

from attendance_live.db.models import RecordChange
from attendance_live.service.views import RecordAudit, RecordView
from attendance_live.timeutil import iso_z
from attendance_live.vocabulary import ChangeMethod, RecordStatus

__all__ = ["AUDIT_COLUMNS", "AuditStatements", "audits_by_user", "change_row", "with_audit"]

AUDIT_COLUMNS = (
    RecordChange.user_id,
    RecordChange.method,
    RecordChange.changed_by,
    RecordChange.changed_at,
    RecordChange.address,
    RecordChange.device_id,
    RecordChange.same_address_as,
    RecordChange.same_device_as,
)


def change_row(
    session_id: str,
    user_id: str,
    status: RecordStatus,
    at: datetime,
    by: str,
    how: ChangeMethod,
    address: str | None,
    device_id: str | None = None,
    same_address_as: str | None = None,
    same_device_as: str | None = None,
) -> dict[str, Any]:
    return {
        "session_id": session_id,
        "user_id": user_id,
        "status": status,
        "changed_at": at,
        "changed_by": by,
        "method": how,
        "address": address,
        "device_id": device_id,
        "same_address_as": same_address_as,
        "same_device_as": same_device_as,
    }


class AuditStatements:
    """The check-in's audit statements (bound parameters ``p_sid``, ``p_uid``, ``p_addr``, ``p_dev``)."""

    def __init__(self) -> None:
        C = RecordChange  # noqa: N806
        sid, uid = bindparam("p_sid", type_=String()), bindparam("p_uid", type_=String())
        address, device = bindparam("p_addr", type_=String()), bindparam("p_dev", type_=String())
        # Earlier check-ins of other students from this address or device (a few suffice).
        self.shared = (
            select(C.user_id, C.address, C.device_id)
            .where(
                C.session_id == sid,
                C.method == "check_in",
                C.user_id != uid,
                or_(C.address == address, C.device_id == device),
            )
            .order_by(C.id)
            .limit(8)
        )
        self.insert = insert(C)

    def flags(self, conn: Connection, params: dict[str, object]) -> tuple[str | None, str | None]:
        """(same_address_as, same_device_as) for a check-in with ``params``."""
        if params.get("p_addr") is None and params.get("p_dev") is None:
            return None, None
        same_address = same_device = None
        for user_id, address, device in conn.execute(self.shared, params):
            if same_address is None and address is not None and address == params.get("p_addr"):
                same_address = user_id
            if same_device is None and device is not None and device == params.get("p_dev"):
                same_device = user_id
        return same_address, same_device


def _audit(row: Sequence[Any], flags_from: Sequence[Any] | None) -> RecordAudit:
    _, how, by, at, address, device, same_address, same_device = row
    if flags_from is not None:
        same_address, same_device = flags_from[6], flags_from[7]
    return RecordAudit(
        how=how,
        by=by,
        at=iso_z(at) or "",
        address=address,
        device_id=device,
        same_address_as=same_address,
        same_device_as=same_device,
    )


def audits_by_user(rows: Iterable[Sequence[Any]]) -> dict[str, RecordAudit]:
    """Each user's last change, from ``AUDIT_COLUMNS`` rows in the order they were written."""
    last: dict[str, Sequence[Any]] = {}
    check_in: dict[str, Sequence[Any]] = {}
    for row in rows:
        last[row[0]] = row
        if row[1] == "check_in":
            check_in[row[0]] = row
    return {user: _audit(row, check_in.get(user)) for user, row in last.items()}


def with_audit(records: Sequence[RecordView], audits: dict[str, RecordAudit]) -> list[RecordView]:
    return [r.model_copy(update={"audit": audits.get(r.user_id)}) for r in records]
