"""The message catalogue: every message in both languages, with the same placeholders."""

from __future__ import annotations

import string

import pytest

from monitoring.categories import CATEGORIES
from store.accounts import ROLES
from store.cases import STATUSES
from survey.catalogue import LANGUAGES, catalogue, label, message


def _placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def test_every_message_has_both_languages_with_the_same_placeholders() -> None:
    for name, texts in catalogue().items():
        assert set(texts) == set(LANGUAGES), name
        assert _placeholders(texts["zh"]) == _placeholders(texts["en"]), name
        assert texts["zh"].strip() and texts["en"].strip(), name


def test_every_code_a_person_meets_has_a_label() -> None:
    for section, codes in (
        ("category", CATEGORIES),
        ("status", STATUSES),
        ("role", ROLES),
        ("tier", ("high", "medium", "low", "none")),
    ):
        for code in codes:
            for lang in LANGUAGES:
                assert label(section, code, lang) != code or lang == "en", (section, code)


def test_a_missing_message_is_named() -> None:
    with pytest.raises(KeyError, match=r"page\.nothing"):
        message("page.nothing", "zh")


def test_placeholders_are_filled() -> None:
    assert message("page.overdue_days", "zh", days=3) == "逾期 3 天"
    assert message("rule.high_relapse_risk", "en", risk=0.456, bound=0.3) == "relapse risk 0.46 >= 0.30"
