"""A roster import's rows: the CSV's parsing and each row's checks, before anything is read or written.

``parse_roster_csv`` turns the uploaded CSV into :class:`RosterRow` items (its header names
columns in any order; every bad line is an :class:`ImportRowError`), and ``check_row`` checks one
row on its own (an id or an email, a known status, not the course's teacher). What the rows then
change is ``service.roster`` (the rules are described there).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Collection
from dataclasses import dataclass
from typing import Final, Literal, cast

from attendance_live.service.errors import InvalidInput
from attendance_live.service.views import ImportRowError
from attendance_live.vocabulary import ENROLLMENT_STATUSES, ID_RE, EnrollmentStatus

__all__ = [
    "EMAIL_RE",
    "HEADER_NAMES",
    "MAX_IMPORT_ROWS",
    "ROW_STATUSES",
    "CheckedRow",
    "RosterRow",
    "RowStatus",
    "check_row",
    "parse_roster_csv",
]


MAX_IMPORT_ROWS: Final = 10_000


EMAIL_RE: Final = re.compile(r"^[^@\s]+@[^@\s]+$")


RowStatus = EnrollmentStatus | Literal["removed"]


ROW_STATUSES: Final[tuple[str, ...]] = (*ENROLLMENT_STATUSES, "removed")


# Header cells as spreadsheets and student information systems spell them (compared in lower
# case without spaces, dashes, underscores or dots) -> our column.
HEADER_NAMES: Final[dict[str, str]] = {
    **dict.fromkeys(("userid", "user", "id", "uid", "sub", "studentid", "username", "login"), "user_id"),
    **dict.fromkeys(("email", "emailaddress", "mail", "courriel"), "email"),
    **dict.fromkeys(("name", "fullname", "displayname", "studentname"), "name"),
    **dict.fromkeys(("status", "enrollmentstatus", "enrolmentstatus", "state"), "status"),
    **dict.fromkeys(("firstname", "givenname", "first"), "first_name"),
    **dict.fromkeys(("lastname", "familyname", "surname", "last"), "last_name"),
}


@dataclass(slots=True)
class RosterRow:
    """One row of an import as given: its line (CSV) or position (JSON), and its cells."""

    line: int
    user_id: str | None
    email: str | None
    name: str | None
    status: str | None


def _header_key(cell: str) -> str:
    return re.sub(r"[\s_\-.]", "", cell.strip().lower())


def parse_roster_csv(body: bytes) -> tuple[list[RosterRow], list[ImportRowError]]:
    """The rows of a roster CSV (UTF-8 with or without BOM; comma or semicolon), or the reasons
    it cannot be read. Line numbers count the header as line 1."""
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidInput(
            f"The file is not UTF-8 (byte {exc.start} cannot be read); "
            "save it as 'CSV UTF-8' and upload it again"
        ) from None
    first_line = text.split("\n", 1)[0]
    delimiter = ";" if first_line.count(";") > first_line.count(",") else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    try:
        header = next(reader, None)
    except csv.Error as exc:
        raise InvalidInput(f"Line 1 (the header) cannot be read: {exc}") from None
    if header is None or not any(cell.strip() for cell in header):
        raise InvalidInput(
            "The file is empty; its first line names the columns (user_id, email, name, status)"
        )
    columns: dict[str, int] = {}
    for index, cell in enumerate(header):
        column = HEADER_NAMES.get(_header_key(cell))
        if column is not None and column not in columns:
            columns[column] = index
    if "user_id" not in columns and "email" not in columns:
        raise InvalidInput(
            f"The header (line 1: {first_line[:80]!r}) has neither a user_id nor an email column; "
            "the first line must name the columns, e.g. user_id,email,name,status"
        )
    rows: list[RosterRow] = []
    errors: list[ImportRowError] = []
    line = reader.line_num
    while True:
        start = line + 1
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            errors.append(ImportRowError(line=start, message=f"cannot be read as CSV: {exc}"))
            break
        line = reader.line_num
        if not any(cell.strip() for cell in cells):
            continue  # blank lines (a spreadsheet's trailing ones) are not rows
        if len(rows) >= MAX_IMPORT_ROWS:
            errors.append(
                ImportRowError(
                    line=start,
                    message=f"more than {MAX_IMPORT_ROWS:,} rows; split the file and import each part",
                )
            )
            break
        if len(cells) > len(header):
            errors.append(
                ImportRowError(
                    line=start,
                    message=f"has {len(cells)} cells but the header names {len(header)} columns "
                    f"(a {delimiter!r} inside a value must be in double quotes)",
                )
            )
            continue
        name = _value(cells, columns, "name")
        if name is None and ("first_name" in columns or "last_name" in columns):
            parts = (_value(cells, columns, "first_name"), _value(cells, columns, "last_name"))
            name = " ".join(p for p in parts if p) or None
        rows.append(
            RosterRow(
                start,
                _value(cells, columns, "user_id"),
                _value(cells, columns, "email"),
                name,
                _value(cells, columns, "status"),
            )
        )
    return rows, errors


def _value(cells: list[str], columns: dict[str, int], column: str) -> str | None:
    """A row's cell of ``column``, stripped; None when empty or absent."""
    index = columns.get(column)
    value = cells[index].strip() if index is not None and index < len(cells) else ""
    return value or None


@dataclass(slots=True)
class CheckedRow:
    """A valid row, its student resolved: an enrollment (``user_id``) or an invitation (``invite``)."""

    line: int
    user_id: str | None
    email: str | None  # as given
    invite: str | None  # lower-cased email of an invitation
    name: str | None
    status: RowStatus
    moves: bool = True  # the status changes (an outbox row; sockets join or leave)
    names: bool = True  # the user's row is written (new, or its name or email changes)


def check_row(row: RosterRow, managers: Collection[str]) -> tuple[str | None, CheckedRow | None]:
    """Why the row is bad, or the row checked."""
    if row.user_id is None and row.email is None:
        return "has neither a user_id nor an email; give at least one", None
    if row.user_id is not None and not ID_RE.match(row.user_id):
        return (
            f"user_id {row.user_id[:40]!r} is not valid: use 1 to 128 letters, digits or ._:@- "
            "starting with a letter or digit",
            None,
        )
    if row.email is not None and (len(row.email) > 320 or not EMAIL_RE.match(row.email)):
        return f"email {row.email[:60]!r} is not an email address (name@domain)", None
    if row.name is not None and len(row.name) > 200:
        return f"name is {len(row.name)} characters long; at most 200", None
    status = (row.status or "approved").strip().lower()
    if status not in ROW_STATUSES:
        return (
            f"status {row.status[:20]!r} is not one of {', '.join(ROW_STATUSES)} (empty means approved)"
            if row.status
            else "status is empty",
            None,
        )
    if row.user_id is not None and row.user_id in managers:
        return (
            f"{row.user_id!r} is a teacher of the course (owner or co-teacher), who cannot enroll in it",
            None,
        )
    invite = row.email.lower() if row.user_id is None and row.email is not None else None
    return None, CheckedRow(row.line, row.user_id, row.email, invite, row.name, cast(RowStatus, status))
