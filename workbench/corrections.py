"""What a visit found: the register's facts a cadre corrects at the door (income, illness, members,
housing), read from the visit's form and checked against the survey schema's own ranges and values.

The fields a visit may correct are policy data (`monitoring/procedure.yaml`, `visit_corrections`); the
form names a household field `fix.FIELD` and a member's `fix.MEMBER.FIELD`; an empty field is no change.
Pure: the caller reads the register and writes the amendments (`store.amendments`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

import pandas as pd
import pandera.pandas as pa

from monitoring.procedure import visit_corrections
from store.amendments import LEFT_HOUSEHOLD, Amendment
from survey.catalogue import Language, label, message
from survey.schema import Households, Members

FIELD_PREFIX = "fix."
YES_NO = (1.0, 0.0)


@dataclass(frozen=True)
class FieldRule:
    """What a field accepts: one of `choices`, or a number from `least` to `most`."""

    choices: tuple[Any, ...] | None = None
    least: float | None = None
    most: float | None = None


@dataclass(frozen=True)
class FieldView:
    """One input of the visit form: its form name, label, current value in words and, for a choice,
    the options (value, words)."""

    name: str
    label: str
    current: str
    choices: tuple[tuple[str, str], ...] | None
    least: float | None
    most: float | None


@dataclass(frozen=True)
class MemberFields:
    heading: str
    fields: tuple[FieldView, ...]


@cache
def field_rule(field: str, of_member: bool) -> FieldRule:
    """The schema's own checks of a field (isin, ge, le), as a rule for the form."""
    if field == LEFT_HOUSEHOLD:
        return FieldRule(choices=(1.0,))
    model: type[pa.DataFrameModel] = Members if of_member else Households
    checks = model.to_schema().columns[field].checks
    statistics = {check.name: check.statistics for check in checks}
    if "isin" in statistics:
        return FieldRule(choices=tuple(statistics["isin"]["allowed_values"]))
    least = statistics.get("greater_than_or_equal_to", {}).get("min_value")
    most = statistics.get("less_than_or_equal_to", {}).get("max_value")
    return FieldRule(least=least, most=most)


def _bounded(rule: FieldRule, money_bound: float) -> FieldRule:
    """Money is bounded by the policy's largest yearly amount, not the schema's sanity bound."""
    if rule.most is None or rule.most <= money_bound:
        return rule
    least = None if rule.least is None else max(rule.least, -money_bound)
    return FieldRule(least=least, most=money_bound)


# ----------------------------------------------------------------------------------------------- form


def correction_form(
    latest: Mapping[str, Any], members: pd.DataFrame | None, lang: Language, money_bound: float
) -> tuple[tuple[FieldView, ...], tuple[MemberFields, ...]]:
    """The visit form's inputs: the household's fields, then each member's (`members`: the rows of the
    round corrected), with what the register holds now."""
    allowed = visit_corrections()
    household = tuple(
        _field_view(f"{FIELD_PREFIX}{field}", field, latest.get(field), False, lang, money_bound)
        for field in allowed.household
    )
    people = []
    rows = [] if members is None else members.to_dict("records")
    for row in rows:
        member_id = str(row["member_id"])
        fields = tuple(
            _field_view(f"{FIELD_PREFIX}{member_id}.{field}", field, row.get(field), True, lang, money_bound)
            for field in allowed.member
        )
        people.append(MemberFields(heading=member_name(row, lang), fields=fields))
    return household, tuple(people)


def member_name(row: Mapping[Any, Any], lang: Language) -> str:
    """A member as a person names them: relation to the head and age ("配偶，45 岁")."""
    relation, age = row.get("relation_to_head"), row.get("age")
    relation_text = label("relation", str(relation), lang) if isinstance(relation, str) else "?"
    age_text = f"{float(age):.0f}" if age is not None and _known(age) else "?"
    return message("whatif.member_option", lang, relation=relation_text, age=age_text)


def _field_view(
    name: str, field: str, current: Any, of_member: bool, lang: Language, money_bound: float
) -> FieldView:
    rule = _bounded(field_rule(field, of_member), money_bound)
    choices = None
    if rule.choices is not None:
        choices = tuple((_form_value(choice), value_words(field, choice, lang)) for choice in rule.choices)
    return FieldView(
        name=name,
        label=label("field", field, lang),
        current=value_words(field, current, lang) if field != LEFT_HOUSEHOLD else "",
        choices=choices,
        least=rule.least,
        most=rule.most,
    )


def value_words(field: str, value: Any, lang: Language) -> str:
    """A field's value as a person reads it (yes/no, a health status, an amount)."""
    if not _known(value):
        return message("visit.unknown", lang)
    if field == LEFT_HOUSEHOLD:
        return message("visit.yes", lang)
    rule = field_rule(field, field in visit_corrections().member)
    if rule.choices == YES_NO or set(rule.choices or ()) == set(YES_NO):
        return message("visit.yes" if float(value) == 1.0 else "visit.no", lang)
    if isinstance(value, str):
        return label(f"value.{field}", value, lang)
    number = float(value)
    return f"{number:,.0f}" if number == round(number) or abs(number) >= 100 else f"{number:,.1f}"


def _form_value(choice: Any) -> str:
    return f"{choice:g}" if isinstance(choice, float) else str(choice)


def _known(value: Any) -> bool:
    return value is not None and value is not pd.NA and not (isinstance(value, float) and value != value)


# ----------------------------------------------------------------------------------------------- read


def read_corrections(
    form: Mapping[str, str],
    latest: Mapping[str, Any],
    members: pd.DataFrame | None,
    lang: Language,
    money_bound: float,
) -> tuple[tuple[Amendment, ...], list[str]]:
    """The amendments the visit form asks for (only fields whose value differs from the register's),
    or what is wrong with it, every problem at once."""
    allowed = visit_corrections()
    changes: list[Amendment] = []
    problems: list[str] = []
    for field in allowed.household:
        _read_one(
            form,
            f"{FIELD_PREFIX}{field}",
            field,
            latest.get(field),
            None,
            lang,
            money_bound,
            changes,
            problems,
        )
    rows = [] if members is None else members.to_dict("records")
    for row in rows:
        member_id = str(row["member_id"])
        for field in allowed.member:
            name = f"{FIELD_PREFIX}{member_id}.{field}"
            _read_one(form, name, field, row.get(field), member_id, lang, money_bound, changes, problems)
    return tuple(changes), problems


def _read_one(
    form: Mapping[str, str],
    name: str,
    field: str,
    current: Any,
    member_id: str | None,
    lang: Language,
    money_bound: float,
    changes: list[Amendment],
    problems: list[str],
) -> None:
    text = form.get(name, "").strip()
    if not text:
        return
    rule = _bounded(field_rule(field, member_id is not None), money_bound)
    value = _parsed(text, rule)
    if value is None:
        problems.append(_problem(field, rule, lang))
        return
    if _known(current) and _same(value, current):
        return
    changes.append(Amendment(field=field, value=value, previous=current, member_id=member_id))


def _parsed(text: str, rule: FieldRule) -> Any:
    if rule.choices is not None:
        return next((choice for choice in rule.choices if _form_value(choice) == text), None)
    try:
        number = float(text.replace(",", "").replace("，", ""))
    except ValueError:
        return None
    if number != number or (rule.least is not None and number < rule.least):
        return None
    return None if rule.most is not None and number > rule.most else number


def _same(value: Any, current: Any) -> bool:
    if isinstance(value, float):
        try:
            return float(current) == value
        except (TypeError, ValueError):
            return False
    return str(current) == str(value)


def _problem(field: str, rule: FieldRule, lang: Language) -> str:
    if rule.choices is not None:
        return message("visit.bad_choice", lang, field=label("field", field, lang))
    return message(
        "visit.bad_number",
        lang,
        field=label("field", field, lang),
        least=f"{rule.least or 0:,.0f}",
        most=f"{rule.most:,.0f}" if rule.most is not None else "∞",
    )


def correction_details(changes: tuple[Amendment, ...], members: pd.DataFrame | None) -> list[dict[str, Any]]:
    """A visit's corrections as the case history keeps them (JSON): each field, the member it concerns
    (with relation and age, to name them later), the value before and after."""
    named = {} if members is None else {str(row["member_id"]): row for row in members.to_dict("records")}
    details = []
    for change in changes:
        entry: dict[str, Any] = {
            "field": change.field,
            "previous": _plain(change.previous),
            "value": change.value,
        }
        if change.member_id is not None:
            row = named.get(change.member_id, {})
            entry["member_id"] = change.member_id
            entry["relation_to_head"] = _plain(row.get("relation_to_head"))
            entry["age"] = _plain(row.get("age"))
        details.append(entry)
    return details


def _plain(value: Any) -> Any:
    if not _known(value):
        return None
    return value.item() if hasattr(value, "item") else value


def correction_sentences(changes: list[Mapping[str, Any]], lang: Language) -> list[str]:
    """A visit's corrections (`correction_details`) as the case history says them ("工资性收入（元/年）：
    3,000 → 5,000")."""
    sentences = []
    for change in changes:
        field = str(change["field"])
        before = value_words(field, change.get("previous"), lang)
        after = value_words(field, change.get("value"), lang)
        if change.get("member_id") is None:
            sentences.append(
                message("visit.change", lang, field=label("field", field, lang), before=before, after=after)
            )
        elif field == LEFT_HOUSEHOLD:
            sentences.append(message("visit.member_left", lang, member=member_name(change, lang)))
        else:
            sentences.append(
                message(
                    "visit.member_change",
                    lang,
                    member=member_name(change, lang),
                    field=label("field", field, lang),
                    before=before,
                    after=after,
                )
            )
    return sentences
