"""``attendance-live watch COURSE_ID``: a course's live events, readable for a person."""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import datetime
from typing import Any

import socketio

__all__ = ["EVENTS", "describe", "watch"]

EVENTS = (
    "courseSessionStarted",
    "courseSessionEnded",
    "activeSessionsData",
    "activeSessionsResponse",
    "activeSessionsError",
)


def _local(stamp: object) -> str:
    if not isinstance(stamp, str):
        return "?"
    try:
        return datetime.fromisoformat(stamp.replace("Z", "+00:00")).astimezone().strftime("%H:%M:%S")
    except ValueError:
        return stamp


def describe(event: str, data: Any) -> str:
    """One line saying what happened."""
    if not isinstance(data, dict):
        return f"{event}: {data!r}"
    if event == "courseSessionStarted":
        topic = f" \u201c{data['topic']}\u201d" if data.get("topic") else ""
        return (
            f"session {data.get('session_id')}{topic} started by {data.get('started_by')} "
            f"at {_local(data.get('started_at'))}"
        )
    if event == "courseSessionEnded":
        s = data.get("final_statistics") or {}
        return (
            f"session {data.get('session_id')} ended by {data.get('ended_by')} "
            f"at {_local(data.get('ended_at'))}: "
            f"{s.get('present')} present, {s.get('absent')} absent of {s.get('total')}"
        )
    if event in ("activeSessionsData", "activeSessionsResponse"):
        sessions = data.get("activeSessions") or []
        if not sessions:
            return f"course {data.get('course_id')}: no active sessions"
        parts = [
            f"{s.get('sessionId')} ({s.get('studentCount')}/{s.get('totalStudents', '?')} checked in, "
            f"since {_local(s.get('startedAt'))})"
            for s in sessions
        ]
        return f"course {data.get('course_id')}: {len(sessions)} active: " + ", ".join(parts)
    if event == "activeSessionsError":
        return f"error [{data.get('code')}]: {data.get('message')}"
    return f"{event}: {json.dumps(data)}"


async def watch(url: str, token: str, course_id: str, *, as_json: bool = False, max_events: int = 0) -> int:
    client = socketio.AsyncClient(reconnection=True)
    done = asyncio.Event()
    seen = 0
    status = 0

    def out(line: str) -> None:
        print(line, flush=True)

    def note(event: str, data: Any) -> None:
        nonlocal seen
        seen += 1
        stamp = datetime.now().strftime("%H:%M:%S")
        out(json.dumps({"event": event, "data": data}) if as_json else f"[{stamp}] {describe(event, data)}")
        if max_events and seen >= max_events:
            done.set()

    async def connect() -> None:
        if not as_json:
            out(f"connected to {url}; subscribing to course {course_id}")
        await client.emit("subscribeToCourse", {"course_id": course_id})

    async def disconnect(reason: object = None) -> None:
        if not as_json:
            out("disconnected; reconnecting...")

    async def connect_error(data: Any) -> None:
        nonlocal status
        message = data.get("message") if isinstance(data, dict) else str(data)
        print(f"connection refused: {message}", file=sys.stderr, flush=True)
        status = 1
        done.set()

    client.on("connect", connect)
    client.on("disconnect", disconnect)
    client.on("connect_error", connect_error)
    for name in EVENTS:
        # Course events carry their offset as a last argument (EVENT_OFFSETS); it is not shown.
        client.on(name, lambda data=None, *_offset, _name=name: note(_name, data))

    try:
        await client.connect(url, auth={"token": token}, transports=["websocket", "polling"], wait_timeout=10)
    except socketio.exceptions.ConnectionError as exc:
        if status == 0:
            print(f"cannot connect to {url}: {exc}", file=sys.stderr)
        return 1
    try:
        await done.wait()
    finally:
        await client.disconnect()
    return status
