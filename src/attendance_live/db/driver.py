"""A Core statement compiled once and run on the SQLite driver's cursor: for the check-in only.

Why: a lecture hall checks in within a second, and the budget is under a
millisecond of CPU a check-in. Profiled in process (docs/performance.md),
SQLAlchemy's execution layer around each ``sqlite3`` call (execution context,
parameter and result processing, the compiled-cache lookup) was about 100 µs
a statement, most of the check-in's database cost; ``sqlite3`` itself takes a
few. So the check-in's few statements are written with SQLAlchemy Core as
everywhere else, compiled once by SQLAlchemy for SQLite, and executed on the
cursor of the connection SQLAlchemy opened (same transaction, same
savepoints). What SQLAlchemy's types would do is done here, for the only type
that needs it: ``UTCDateTime`` in and out, in SQLite's stored format.

Only public interfaces: ``Compiled.string``, ``positiontup``, ``binds``,
``params``, the statement's column descriptions, and the DBAPI connection
(``Connection.connection.dbapi_connection``). PostgreSQL keeps the normal path.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.sql.dml import UpdateBase
from sqlalchemy.sql.selectable import Select

from attendance_live.db.models import UTCDateTime

__all__ = ["DriverStatement"]

# SQLAlchemy's SQLite DATETIME storage format (what UTCDateTime columns hold).
_STORED = "%Y-%m-%d %H:%M:%S.%f"


def _stored(value: datetime) -> str:
    if value.tzinfo is None:
        raise ValueError("naive datetime given to a UTC column")
    return value.astimezone(UTC).strftime(_STORED)


def _loaded(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value).replace(tzinfo=UTC)


class DriverStatement:
    """``statement`` for the ``sqlite3`` cursor; ``rows(conn, params)`` runs it in ``conn``'s transaction."""

    def __init__(self, statement: Select[*tuple[Any, ...]] | UpdateBase, dialect: Dialect) -> None:
        compiled = statement.compile(dialect=dialect)
        if compiled.positiontup is None:
            raise ValueError(f"{dialect.name} does not bind positionally; use the statement as it is")
        self.sql = compiled.string
        self._names = list(compiled.positiontup)
        self._fixed: dict[str, Any] = dict(compiled.params)  # literals bound by SQLAlchemy
        self._datetimes_in = {
            name for name, bind in compiled.binds.items() if isinstance(bind.type, UTCDateTime)
        }
        columns = (
            statement.returning_column_descriptions
            if isinstance(statement, UpdateBase)
            else statement.column_descriptions
        )
        self._datetimes_out = [i for i, c in enumerate(columns) if isinstance(c["type"], UTCDateTime)]

    def rows(self, conn: Connection, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        values = []
        for name in self._names:
            value = params[name] if name in params else self._fixed[name]
            if name in self._datetimes_in and value is not None:
                value = _stored(value)
            values.append(value)
        raw = conn.connection.dbapi_connection
        assert raw is not None, "the unit's connection is open"
        cursor = raw.cursor()
        try:
            fetched = cursor.execute(self.sql, values).fetchall()
        finally:
            cursor.close()
        if not self._datetimes_out:
            return [tuple(row) for row in fetched]
        out = []
        for row in fetched:
            converted = list(row)
            for i in self._datetimes_out:
                converted[i] = _loaded(converted[i])
            out.append(tuple(converted))
        return out
