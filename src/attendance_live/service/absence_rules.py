"""Absence rules as data: the thresholds a course's managers set, a student's metrics, and the test.

A student's metrics are counted over the course's ended sessions as the course report counts them
(``service.reports``): the rate is (present + late) / (sessions − excused); a streak is broken by
any record that is not ``absent``. When the rules are looked at, and who is told, is
``service.alerts``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, Field

from attendance_live.db.term_models import AbsenceRule

__all__ = ["Metrics", "RuleSpec", "RuleView", "alert_message", "has_crossed", "measure", "rule_view"]


class RuleSpec(BaseModel):
    """A threshold, as a manager sets it."""

    kind: Literal["absences", "rate", "streak"]
    count: int = Field(
        ge=1, le=1000, description="absences: how many; rate: after how many sessions; streak: how long"
    )
    below: float | None = Field(
        default=None, gt=0, le=1, description="rate only: the rate (0 to 1) to stay above"
    )


class RuleView(RuleSpec):
    id: str


@dataclass(frozen=True, slots=True)
class Metrics:
    """A student's attendance over a course's ended sessions."""

    sessions: int
    absences: int
    attended: int  # present + late
    excused: int
    streak: int  # absences in a row, up to the latest session

    @property
    def rate(self) -> float | None:
        counted = self.sessions - self.excused
        return None if counted <= 0 else self.attended / counted


def measure(statuses: Sequence[str]) -> Metrics:
    """The metrics of a student's records in session order."""
    streak = 0
    for status in reversed(statuses):
        if status != "absent":
            break
        streak += 1
    return Metrics(
        sessions=len(statuses),
        absences=sum(1 for s in statuses if s == "absent"),
        attended=sum(1 for s in statuses if s in ("present", "late")),
        excused=sum(1 for s in statuses if s == "excused"),
        streak=streak,
    )


def has_crossed(rule: RuleSpec, m: Metrics) -> bool:
    if rule.kind == "absences":
        return m.absences >= rule.count
    if rule.kind == "streak":
        return m.streak >= rule.count
    rate = m.rate
    return m.sessions >= rule.count and rate is not None and rule.below is not None and rate < rule.below


def alert_message(rule: RuleSpec, m: Metrics, name: str, code: str) -> str:
    if rule.kind == "absences":
        return f"{name} has been absent from {m.absences} sessions of {code} (the threshold is {rule.count})."
    if rule.kind == "streak":
        return f"{name} has missed the last {m.streak} sessions of {code} in a row."
    return (
        f"{name}'s attendance in {code} is {(m.rate or 0):.0%} after {m.sessions} sessions, "
        f"below {(rule.below or 0):.0%}."
    )


def rule_view(rule: AbsenceRule) -> RuleView:
    return RuleView(id=rule.id, kind=rule.kind, count=rule.count, below=rule.below)
