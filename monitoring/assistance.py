"""Targeted help (精准帮扶): up to three assistance measures that fit a household's causes of poverty.

The measures, their conditions and the cause -> measures table are data in the policy
(`features/policy.yaml`, section `assistance`). The rule: walk the main cause, then the secondary
causes; within a cause take its measures in the table's order whose conditions hold on the household's
indicators (an unknown indicator never meets a condition); each measure once; stop at `max_measures`.
Each recommendation says which cause it answers and why it fits, in the household's language.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from features.policy import AssistanceTable
from models.explain import Language
from monitoring.causes import CauseSettings


@dataclass(frozen=True)
class Recommendation:
    """One measure for one household: its code, family, name, the cause it answers and why it fits."""

    measure: str
    family: str
    name: str
    cause: str
    why: str


def recommend_measures(
    main_cause: str,
    secondary_causes: Sequence[str],
    indicators: Mapping[str, float],
    table: AssistanceTable,
    causes: CauseSettings,
    lang: Language = "zh",
) -> list[Recommendation]:
    """The measures that fit the household's causes (module docstring), at most `table.max_measures`."""
    chosen: list[Recommendation] = []
    taken: set[str] = set()
    for rank, cause in enumerate([main_cause, *secondary_causes]):
        for code in table.by_cause.get(cause, ()):
            measure = table.measures[code]
            if code in taken or not measure.fits(dict(indicators)):
                continue
            taken.add(code)
            chosen.append(
                Recommendation(
                    measure=code,
                    family=measure.family,
                    name=measure.name[lang],
                    cause=cause,
                    why=_why(causes.labels[cause][lang], rank == 0, measure.why[lang], lang),
                )
            )
            if len(chosen) == table.max_measures:
                return chosen
    return chosen


def _why(cause_label: str, is_main: bool, reason: str, lang: Language) -> str:
    if lang == "zh":
        return f"{'主要' if is_main else '次要'}致贫原因“{cause_label}”：{reason}"
    return f"{'main' if is_main else 'secondary'} cause {cause_label}: {reason}"
