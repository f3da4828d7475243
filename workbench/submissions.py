"""What a person asks of a case or a household, read from a form or from a phone's queue, and what came
of it. Pure: the pages apply it (`workbench.case_pages`, `workbench.intake_pages`) and the phone's sync
sends it (`workbench.offline_pages`).

A phone's queued submission is a JSON object:

    {"key": "<uuid>", "grant": "<token>", "user": "li.cadre", "kind": "step" | "declaration" | "note",
     "made_at": "2026-12-06T09:30:00Z", "seen_at": "2026-12-06T08:00:00+00:00", "fields": {...}}

`fields` are the form's own fields: for a step `case`, `step`, `note`, `version`, `status` and the visit's
corrections `fix.*`; for a declaration `household`, `event`, `amount`, `note`; for a note (a conflict
settled by keeping the other person's step) `case`, `step`, `note` and the `fix.*` that were not applied.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from store.offline import KEY_PATTERN, KINDS, Receipt
from workbench.corrections import FIELD_PREFIX

Outcome = Literal["applied", "duplicate", "conflict", "refused", "forbidden", "unauthorised"]
KEY_FIELD = "submission_key"
"""The form field (filled by the page's script) holding a submission's idempotency key."""
MOST_FIELDS = 200
MOST_FIELD_LENGTH = 2_000


class BadSubmission(ValueError):
    """A queued submission that is not one (the message says what is wrong with it)."""


@dataclass(frozen=True)
class Taken:
    """What came of a submission: its outcome, the words for the person, the HTTP status a form gets,
    and for a conflict what the case is now."""

    outcome: Outcome
    message: str = ""
    status: int = 200
    conflict: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class StepAsked:
    """A step asked of a case: its name, the note, the version and status the person saw, the visit's
    corrections (`fix.*` fields) and what the history keeps beside (when it was recorded offline)."""

    step: str
    note: str | None
    version: int | None
    status: str | None
    fixes: dict[str, str]
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Queued:
    """A phone's queued submission, checked for shape (not yet for its content)."""

    key: str
    grant: str
    user: str
    kind: str
    made_at: datetime | None
    seen_at: datetime | None
    fields: dict[str, str]


def step_asked(form: Mapping[str, Any], recorded_offline: datetime | None = None) -> StepAsked:
    """The step a case's form (or a queued copy of it) asks for."""
    values = {str(name): value for name, value in form.items() if isinstance(value, str)}
    version = values.get("version", "")
    return StepAsked(
        step=values.get("step", ""),
        note=values.get("note", "").strip() or None,
        version=int(version) if version.isdigit() and len(version) < 10 else None,
        status=values.get("status") or None,
        fixes={name: value for name, value in values.items() if name.startswith(FIELD_PREFIX)},
        details={} if recorded_offline is None else {"recorded_offline": recorded_offline.isoformat()},
    )


def form_receipt(form: Mapping[str, Any], user_id: str, kind: str, case: Mapping[str, Any]) -> Receipt | None:
    """The receipt a form's submission is kept under, when the page's script gave it a key (a form sent
    without the script is applied as sent, with no guard against a second send)."""
    key = form.get(KEY_FIELD)
    if not isinstance(key, str) or not KEY_PATTERN.match(key):
        return None
    return Receipt(key, user_id, kind, str(case["county_id"]), str(case["household_id"]))


def queued(item: Any) -> Queued:
    """A queued submission checked for shape; `BadSubmission` saying what is wrong."""
    if not isinstance(item, Mapping):
        raise BadSubmission("a submission is a JSON object")
    key, grant, user, kind = (item.get(name) for name in ("key", "grant", "user", "kind"))
    if not isinstance(key, str) or not KEY_PATTERN.match(key):
        raise BadSubmission("key: 8 to 64 letters, digits, '-', '_', '.' or ':' expected")
    if not isinstance(grant, str) or not grant or len(grant) > 128:
        raise BadSubmission("grant: the phone's token is missing")
    if not isinstance(user, str) or not user or len(user) > 64:
        raise BadSubmission("user: who recorded it is missing")
    if kind not in KINDS:
        raise BadSubmission(f"kind: one of {', '.join(KINDS)}")
    fields = item.get("fields")
    if not isinstance(fields, Mapping) or len(fields) > MOST_FIELDS:
        raise BadSubmission(f"fields: an object of at most {MOST_FIELDS} form fields")
    if not all(isinstance(v, str) and len(v) <= MOST_FIELD_LENGTH for v in fields.values()):
        raise BadSubmission(f"fields: every value a text of at most {MOST_FIELD_LENGTH} characters")
    return Queued(
        key=key,
        grant=grant,
        user=user,
        kind=str(kind),
        made_at=_moment(item.get("made_at")),
        seen_at=_moment(item.get("seen_at")),
        fields={str(name): str(value) for name, value in fields.items()},
    )


def queued_case(submission: Queued) -> int:
    """The case a step or a note is for; `BadSubmission` when it names none."""
    case = submission.fields.get("case", "")
    if not case.isdigit() or len(case) > 9:
        raise BadSubmission("fields.case: the case's number is missing")
    return int(case)


def _moment(value: Any) -> datetime | None:
    if not isinstance(value, str) or len(value) > 40:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
