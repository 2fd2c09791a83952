"""A checker for xAPI 1.0.3 statements, written from the specification's rules.

xAPI 1.0.3, Part Two (https://github.com/adlnet/xAPI-Spec/blob/master/xAPI-Data.md), section 2.4:
a Statement has ``actor``, ``verb`` and ``object``; ``id`` is a UUID; no property
outside the ones the specification lists (extensions aside); an Agent has exactly
one inverse functional identifier, an ``account`` has ``homePage`` (an IRL) and
``name``; IRIs are absolute; language maps are keyed by RFC 5646 tags; the
timestamp is ISO 8601; ``contextActivities`` holds arrays of Activities under
``parent``, ``grouping``, ``category`` and ``other``; ``revision`` and
``platform`` only when the object is an Activity; ``version`` starts with ``1.0.``.

``statement_problems`` returns every rule a statement breaks (empty when valid),
so a test can also show that a broken statement is caught.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Any

__all__ = ["statement_problems"]

STATEMENT_KEYS = {
    "id",
    "actor",
    "verb",
    "object",
    "result",
    "context",
    "timestamp",
    "stored",
    "authority",
    "version",
    "attachments",
}
AGENT_KEYS = {"objectType", "name", "mbox", "mbox_sha1sum", "openid", "account"}
IFIS = ("mbox", "mbox_sha1sum", "openid", "account")
ACTIVITY_KEYS = {"objectType", "id", "definition"}
DEFINITION_KEYS = {
    "name",
    "description",
    "type",
    "moreInfo",
    "extensions",
    "interactionType",
    "correctResponsesPattern",
    "choices",
    "scale",
    "source",
    "target",
    "steps",
}
RESULT_KEYS = {"score", "success", "completion", "response", "duration", "extensions"}
CONTEXT_KEYS = {
    "registration",
    "instructor",
    "team",
    "contextActivities",
    "revision",
    "platform",
    "language",
    "statement",
    "extensions",
}
CONTEXT_ACTIVITY_KEYS = {"parent", "grouping", "category", "other"}
# RFC 3986 scheme followed by ':' and something; RFC 5646 language tag, simplified.
IRI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:\S+$")
LANGUAGE_TAG = re.compile(r"^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*$")
ISO_8601 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")


def statement_problems(statement: Any) -> list[str]:
    problems: list[str] = []
    if not isinstance(statement, dict):
        return ["a statement must be a JSON object"]
    _unknown(statement, STATEMENT_KEYS, "statement", problems)
    for key in ("actor", "verb", "object"):
        if key not in statement:
            problems.append(f"statement: missing required {key!r}")
    if "id" in statement:
        _uuid(statement["id"], "statement.id", problems)
    if "actor" in statement:
        _agent(statement["actor"], "actor", problems)
    if "verb" in statement:
        verb = statement["verb"]
        if not isinstance(verb, dict):
            problems.append("verb: must be an object")
        else:
            _unknown(verb, {"id", "display"}, "verb", problems)
            _iri(verb.get("id"), "verb.id", problems)
            if "display" in verb:
                _language_map(verb["display"], "verb.display", problems)
    is_activity = False
    if "object" in statement:
        obj = statement["object"]
        is_activity = isinstance(obj, dict) and obj.get("objectType", "Activity") == "Activity"
        if is_activity:
            _activity(obj, "object", problems)
        else:
            problems.append("object: this checker knows Activities only")
    if "result" in statement:
        _result(statement["result"], problems)
    if "context" in statement:
        _context(statement["context"], is_activity, problems)
    if "timestamp" in statement:
        _timestamp(statement["timestamp"], "timestamp", problems)
    if "version" in statement and not str(statement["version"]).startswith("1.0."):
        problems.append(f"version: {statement['version']!r} does not start with '1.0.'")
    return problems


def _unknown(value: dict[str, Any], allowed: set[str], where: str, problems: list[str]) -> None:
    for key in value:
        if key not in allowed:
            problems.append(f"{where}: property {key!r} is not allowed")


def _uuid(value: Any, where: str, problems: list[str]) -> None:
    try:
        parsed = uuid.UUID(str(value))
    except ValueError:
        problems.append(f"{where}: {value!r} is not a UUID")
        return
    if str(parsed) != str(value).lower() or parsed.variant != uuid.RFC_4122:
        problems.append(f"{where}: {value!r} is not an RFC 4122 UUID in canonical form")


def _iri(value: Any, where: str, problems: list[str]) -> None:
    if not isinstance(value, str) or not IRI.match(value):
        problems.append(f"{where}: {value!r} is not an absolute IRI")


def _irl(value: Any, where: str, problems: list[str]) -> None:
    if not isinstance(value, str) or not re.match(r"^https?://\S+$", value):
        problems.append(f"{where}: {value!r} is not an IRL (http or https)")


def _language_map(value: Any, where: str, problems: list[str]) -> None:
    if not isinstance(value, dict) or not value:
        problems.append(f"{where}: a language map must be a non-empty object")
        return
    for tag, text in value.items():
        if not LANGUAGE_TAG.match(tag):
            problems.append(f"{where}: {tag!r} is not an RFC 5646 language tag")
        if not isinstance(text, str):
            problems.append(f"{where}[{tag}]: must be a string")


def _extensions(value: Any, where: str, problems: list[str]) -> None:
    if not isinstance(value, dict):
        problems.append(f"{where}: must be an object")
        return
    for key in value:
        _iri(key, f"{where} key", problems)


def _timestamp(value: Any, where: str, problems: list[str]) -> None:
    if not isinstance(value, str) or not ISO_8601.match(value):
        problems.append(f"{where}: {value!r} is not an ISO 8601 timestamp with a time zone")
        return
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        problems.append(f"{where}: {value!r} is not a valid date and time")


def _agent(value: Any, where: str, problems: list[str]) -> None:
    if not isinstance(value, dict):
        problems.append(f"{where}: must be an object")
        return
    _unknown(value, AGENT_KEYS, where, problems)
    if value.get("objectType", "Agent") != "Agent":
        problems.append(f"{where}.objectType: must be 'Agent' (Groups are not checked here)")
    ifis = [key for key in IFIS if key in value]
    if len(ifis) != 1:
        problems.append(f"{where}: needs exactly one inverse functional identifier, has {ifis}")
    if "name" in value and not isinstance(value["name"], str):
        problems.append(f"{where}.name: must be a string")
    if "account" in value:
        account = value["account"]
        if not isinstance(account, dict):
            problems.append(f"{where}.account: must be an object")
            return
        _unknown(account, {"homePage", "name"}, f"{where}.account", problems)
        _irl(account.get("homePage"), f"{where}.account.homePage", problems)
        if not isinstance(account.get("name"), str) or not account.get("name"):
            problems.append(f"{where}.account.name: must be a non-empty string")


def _activity(value: dict[str, Any], where: str, problems: list[str]) -> None:
    _unknown(value, ACTIVITY_KEYS, where, problems)
    _iri(value.get("id"), f"{where}.id", problems)
    definition = value.get("definition")
    if definition is None:
        return
    if not isinstance(definition, dict):
        problems.append(f"{where}.definition: must be an object")
        return
    _unknown(definition, DEFINITION_KEYS, f"{where}.definition", problems)
    for key in ("name", "description"):
        if key in definition:
            _language_map(definition[key], f"{where}.definition.{key}", problems)
    if "type" in definition:
        _iri(definition["type"], f"{where}.definition.type", problems)
    if "moreInfo" in definition:
        _irl(definition["moreInfo"], f"{where}.definition.moreInfo", problems)
    if "extensions" in definition:
        _extensions(definition["extensions"], f"{where}.definition.extensions", problems)


def _result(value: Any, problems: list[str]) -> None:
    if not isinstance(value, dict):
        problems.append("result: must be an object")
        return
    _unknown(value, RESULT_KEYS, "result", problems)
    for key in ("success", "completion"):
        if key in value and not isinstance(value[key], bool):
            problems.append(f"result.{key}: must be true or false")
    if "response" in value and not isinstance(value["response"], str):
        problems.append("result.response: must be a string")
    if "extensions" in value:
        _extensions(value["extensions"], "result.extensions", problems)


def _context(value: Any, object_is_activity: bool, problems: list[str]) -> None:
    if not isinstance(value, dict):
        problems.append("context: must be an object")
        return
    _unknown(value, CONTEXT_KEYS, "context", problems)
    if "registration" in value:
        _uuid(value["registration"], "context.registration", problems)
    if "instructor" in value:
        _agent(value["instructor"], "context.instructor", problems)
    for key in ("revision", "platform"):
        if key in value:
            if not object_is_activity:
                problems.append(f"context.{key}: only allowed when the object is an Activity")
            if not isinstance(value[key], str):
                problems.append(f"context.{key}: must be a string")
    if "language" in value and not LANGUAGE_TAG.match(str(value["language"])):
        problems.append(f"context.language: {value['language']!r} is not an RFC 5646 tag")
    if "extensions" in value:
        _extensions(value["extensions"], "context.extensions", problems)
    activities = value.get("contextActivities")
    if activities is None:
        return
    if not isinstance(activities, dict):
        problems.append("context.contextActivities: must be an object")
        return
    _unknown(activities, CONTEXT_ACTIVITY_KEYS, "context.contextActivities", problems)
    for key, items in activities.items():
        for index, item in enumerate(items if isinstance(items, list) else [items]):
            where = f"context.contextActivities.{key}[{index}]"
            if not isinstance(item, dict):
                problems.append(f"{where}: must be an Activity object")
            else:
                _activity(item, where, problems)
