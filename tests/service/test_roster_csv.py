"""Reading a roster CSV: header spellings, delimiters, BOM, quoting, and where a row starts."""

from __future__ import annotations

import pytest

from attendance_live.service.errors import InvalidInput
from attendance_live.service.roster_rows import RosterRow, parse_roster_csv


def test_header_spellings_semicolons_bom_and_split_names() -> None:
    body = "\ufeffStudent ID;E-Mail;First name;Last name;Enrolment status;Notes\r\n"
    body += "s1;ADA@example.edu;Ada;Lovelace;Pending;ignored\r\n"
    body += ";bob@example.edu;Bob;;;\r\n"
    rows, errors = parse_roster_csv(body.encode())
    assert errors == []
    assert rows == [
        RosterRow(2, "s1", "ADA@example.edu", "Ada Lovelace", "Pending"),
        RosterRow(3, None, "bob@example.edu", "Bob", None),
    ]


def test_quoted_cells_keep_commas_and_lines_count_from_where_a_row_starts() -> None:
    body = 'user_id,name\ns1,"Lovelace, Ada"\ns2,"two\nlines"\n\ns3,Cy\n'
    rows, errors = parse_roster_csv(body.encode())
    assert errors == []
    assert [(r.line, r.user_id, r.name) for r in rows] == [
        (2, "s1", "Lovelace, Ada"),
        (3, "s2", "two\nlines"),
        (6, "s3", "Cy"),  # the blank line 5 is no row, but it counts
    ]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "The file is empty"),
        (b"name,status\nAda,approved\n", "neither a user_id nor an email column"),
        ("user_id\nZo\xeb\n".encode("latin-1"), "save it as 'CSV UTF-8'"),
    ],
)
def test_unreadable_files_say_what_to_do(body: bytes, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        parse_roster_csv(body)
