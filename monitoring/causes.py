"""Causes of poverty from the archive card for each flagged household: a main cause and up to two
secondary causes, derived from the household's SHAP reasons and its indicators.

The rule (settings and the indicator -> cause table are data in `monitoring/causes.yaml`):

1. Reason evidence: each of the household's reasons (an indicator that raised its risk, with its SHAP
   contribution in log-odds) that `reason_causes` maps to a cause adds its contribution to that cause.
   Causes with reason evidence come first, the largest summed contribution first.
2. Indicator evidence: a shock reported this round or a failed guarantee (indicator == 1, listed in
   `indicator_causes`) points to its cause even when the model did not rank it among the reasons; such
   causes come after the reason-evidenced ones, in the archive card's order.
3. The first cause is the main cause, the next `max_secondary` (2) are the secondary causes. A household
   with no evidence for any listed cause gets `other`.

Income levels, registration, assistance, housing and trend indicators describe the state of poverty, not
a cause on the card, so they point to none; `lack_of_drive` is never derived (a cadre's judgement).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from survey.catalogue import LANGUAGES, has_message, message

CAUSES_FILE = Path(__file__).with_name("causes.yaml")
OTHER = "other"
SECONDARY_SEPARATOR = ";"


class CauseSettingsError(ValueError):
    """monitoring/causes.yaml is malformed: an unknown cause, a missing section, a bad count."""


@dataclass(frozen=True)
class CauseSettings:
    """The archive card's causes (code -> {zh, en} label), the reason and indicator tables, the count."""

    version: str
    labels: Mapping[str, Mapping[str, str]]
    reason_causes: Mapping[str, str]
    indicator_causes: Mapping[str, str]
    max_secondary: int

    @property
    def causes(self) -> tuple[str, ...]:
        return tuple(self.labels)


def parse_cause_settings(raw: Mapping[str, Any]) -> CauseSettings:
    """CauseSettings from the YAML mapping; CauseSettingsError naming what is wrong."""
    missing = [key for key in ("version", "causes", "reason_causes", "indicator_causes") if key not in raw]
    if missing:
        raise CauseSettingsError(f"causes settings lack {missing}")
    labels = _cause_labels(raw["causes"])
    if OTHER not in labels:
        raise CauseSettingsError(f"the causes must include {OTHER!r}")
    for table in ("reason_causes", "indicator_causes"):
        unknown = sorted({str(cause) for cause in raw[table].values()} - set(labels))
        if unknown:
            raise CauseSettingsError(f"{table} points to unknown cause(s) {unknown}")
    max_secondary = raw.get("max_secondary", 2)
    if not isinstance(max_secondary, int) or max_secondary < 0:
        raise CauseSettingsError(f"max_secondary must be a non-negative integer, got {max_secondary!r}")
    return CauseSettings(
        version=str(raw["version"]),
        labels=labels,
        reason_causes={str(k): str(v) for k, v in raw["reason_causes"].items()},
        indicator_causes={str(k): str(v) for k, v in raw["indicator_causes"].items()},
        max_secondary=max_secondary,
    )


def _cause_labels(causes: Any) -> dict[str, dict[str, str]]:
    """The causes' words: from the message catalogue (`cause.<code>`) for a list of codes, or a
    settings file's own words ({code: {zh, en}}), both languages required."""
    if isinstance(causes, Mapping):
        labels = {
            str(code): {str(lang): str(text) for lang, text in dict(label).items()}
            for code, label in causes.items()
        }
    else:
        unknown = [str(code) for code in causes if not has_message(f"cause.{code}")]
        if unknown:
            raise CauseSettingsError(f"the message catalogue has no words for cause(s) {unknown}")
        labels = {str(code): {lang: message(f"cause.{code}", lang) for lang in LANGUAGES} for code in causes}
    lacking = sorted(code for code, label in labels.items() if not set(LANGUAGES) <= set(label))
    if lacking:
        raise CauseSettingsError(f"cause(s) {lacking} lack words in {' or '.join(LANGUAGES)}")
    return labels


@cache
def load_cause_settings(path: Path = CAUSES_FILE) -> CauseSettings:
    with open(path, encoding="utf-8") as handle:
        return parse_cause_settings(yaml.safe_load(handle))


def household_causes(
    reasons: Sequence[Mapping[str, Any]], indicator_flags: Mapping[str, float], settings: CauseSettings
) -> tuple[str, tuple[str, ...]]:
    """(main cause, secondary causes) of one household (module docstring)."""
    evidence: dict[str, float] = {}
    for reason in reasons:
        cause = settings.reason_causes.get(str(reason["indicator"]))
        contribution = float(reason["contribution"])
        if cause is not None and contribution > 0:
            evidence[cause] = evidence.get(cause, 0.0) + contribution
    ranked = sorted(evidence, key=lambda cause: (-evidence[cause], settings.causes.index(cause)))
    pointed = {cause for name, cause in settings.indicator_causes.items() if indicator_flags.get(name) == 1.0}
    ranked += [cause for cause in settings.causes if cause in pointed and cause not in evidence]
    if not ranked:
        return OTHER, ()
    return ranked[0], tuple(ranked[1 : 1 + settings.max_secondary])


def assign_causes(
    features: pd.DataFrame,
    reasons: Sequence[Sequence[Mapping[str, Any]]],
    settings: CauseSettings | None = None,
) -> pd.DataFrame:
    """`main_cause` and `secondary_causes` (codes joined by ";", empty when none) for every row of
    `features`, whose reasons are `reasons` (same order). Returns a frame on `features.index`."""
    if len(reasons) != len(features):
        raise ValueError(f"assign_causes: {len(features)} households but {len(reasons)} reason lists")
    settings = settings or load_cause_settings()
    columns = [name for name in settings.indicator_causes if name in features.columns]
    flags = features[columns].to_numpy(dtype=np.float64)
    main, secondary = [], []
    for row, household_reasons in enumerate(reasons):
        indicator_flags = dict(zip(columns, flags[row], strict=True))
        cause, others = household_causes(household_reasons, indicator_flags, settings)
        main.append(cause)
        secondary.append(SECONDARY_SEPARATOR.join(others))
    return pd.DataFrame({"main_cause": main, "secondary_causes": secondary}, index=features.index)
