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

from sqlalchemy import String, bindparam, insert, select

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
    """The check-in's audit row, flags included, in one statement.

    Bound parameters: ``p_sid``, ``p_uid``, ``p_status``, ``p_now``, ``p_addr``,
    ``p_dev``; it returns ``(same_address_as, same_device_as)``.
    """

    def __init__(self) -> None:
        C = RecordChange  # noqa: N806
        sid, uid = bindparam("p_sid", type_=String()), bindparam("p_uid", type_=String())

        def first_other(column: Any, value: Any) -> Any:
            """The first other student who checked in with the same ``column`` (NULL matches none)."""
            return (
                select(C.user_id)
                .where(C.session_id == sid, C.method == "check_in", C.user_id != uid, column == value)
                .order_by(C.id)
                .limit(1)
                .scalar_subquery()
            )

        address, device = bindparam("p_addr", type_=String()), bindparam("p_dev", type_=String())
        self.check_in = (
            insert(C)
            .values(
                session_id=sid,
                user_id=uid,
                status=bindparam("p_status", type_=C.status.type),
                changed_at=bindparam("p_now", type_=C.changed_at.type),
                changed_by=uid,
                method="check_in",
                address=address,
                device_id=device,
                same_address_as=first_other(C.address, address),
                same_device_as=first_other(C.device_id, device),
            )
            .returning(C.same_address_as, C.same_device_as)
        )


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
