"""`povrisk monitor` for a province on a Dask cluster: the transitions between two rounds, part by part.

A part (`store.parts.Part`: a block of a county's villages) is one task on a worker (`monitor_part`). It
scores both rounds of its households with the same pinned models as every other part and as the single machine
(`serving.batch.scored_round`, `round_facts`, `monitoring.transitions.household_transitions`, the code of
`serving.monitor.monitor_rounds`), and sends the client only small tables: transition counts by village,
the category movements, households flagged now by village, and (for drift) bin counts per feature.

Which households a part counts, so that the province counts each once, as `monitor_rounds` does county
by county (`household_transitions` places a household in its current village, else its previous one):
- every household living in the part's villages in the current round (with its earlier rounds);
- every household living in the part's villages in the previous round that is in no village of the county
  in the current round (it left the panel). One that moved to another village is counted there.
A household's facts of a round are those of scoring that round with every household of its village in
that round present (a village's households are each other's context: `features.frame._village_others`):
the current round is read by the part's villages; the previous round by the part's villages and the
previous villages of the households that moved in.

Parts are planned over the villages of either round (`plan_monitor_parts`), so a village that emptied
between the rounds still has its leavers counted. With an output folder, each part writes its household
transitions as one Parquet file, beside its place then renamed into it (a retried part replaces it whole).

Drift, when the job carries bin edges (`reference_edges`: deciles of each feature in the data the pinned
models were held out on at training, fixed before any part runs): each part counts its households'
feature values per bin in both rounds, the client sums the counts by county and for the province and
computes the population stability index (PSI) of the current round against the previous one over those
bins, with the missing shares. This is not the single-machine drift table, whose bins are the previous
round's own deciles and which adds a Kolmogorov-Smirnov test: exact deciles and KS need every value in
one place; bin counts do not. The risk score's drift is its mean in each round (exact) and its PSI over
fixed tenths of probability (`SCORE_EDGES`).
"""

from __future__ import annotations

import dataclasses
import html
import os
import socket
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from features.policy import Policy, load_policy
from models.predictor import RiskPredictor
from monitoring.categories import CATEGORIES, NOT_MONITORED
from monitoring.drift import psi_from_shares, quantile_edges
from monitoring.transitions import (
    COUNTY,
    ROUND_COLUMNS,
    TRANSITIONS,
    category_movements,
    household_transitions,
    transition_counts,
)
from serving.batch import ScoredRound, larger_risk, round_facts, scored_round
from serving.province import CountyVersions, _predictor, _write_part, run_parts, versions_of
from store.parts import Part, plan_parts, prepare_worker, worker_engine
from store.register import read_register_villages, registered_histories
from survey.catalogue import Language, label, message
from survey.io import Survey
from survey.validate import conform

PROVINCE = "province"
"""The province's row in the tables by county."""
FLAGGED = "flagged_now"
"""Households in a monitoring category in the current round (the single-machine summary's `flagged_now`)."""
COUNT_COLUMNS = ("households", *TRANSITIONS)
SCORE_EDGES = tuple(round(0.1 * step, 1) for step in range(1, 10))
"""Inner edges of the risk score's bins: tenths of probability, the same for every county and round."""
DRIFT_COLUMNS = ("county_id", "feature", "psi", "missing_reference", "missing_current", "drifted")
SCORE_DRIFT_COLUMNS = ("county_id", "psi", "mean_reference", "mean_current", "mean_shift")

Edges = tuple[tuple[str, tuple[float, ...]], ...]
"""(feature, inner bin edges) of each feature whose drift is measured."""


@dataclass(frozen=True)
class MonitorJob:
    """What every part needs, sent to the workers: the two rounds, addresses and names, no data."""

    previous: int
    current: int
    db_url: str
    tracking_uri: str
    versions: CountyVersions
    """The models of each county, pinned before the rounds: both rounds of a county's parts are scored by
    the same ones."""
    policy_file: str | None = None
    out: str | None = None
    """A folder the workers can write to (shared), for the household transitions; None writes none."""
    drift_edges: Edges = ()
    """Bin edges of the features whose drift is measured (`reference_edges`); empty: no drift."""


@dataclass(frozen=True)
class RoundBins:
    """One round's households counted per bin of each feature (and of the larger risk): what drift needs
    of a part, small whatever the part's size, and summed part by part."""

    rows: int
    counts: Mapping[str, np.ndarray]
    """Per feature: observed values per bin (len(edges) + 1 bins, right-closed)."""
    missing: Mapping[str, int]
    score_counts: np.ndarray
    score_sum: float
    score_observed: int

    def __add__(self, other: RoundBins) -> RoundBins:
        return RoundBins(
            rows=self.rows + other.rows,
            counts={name: counts + other.counts[name] for name, counts in self.counts.items()},
            missing={name: missing + other.missing[name] for name, missing in self.missing.items()},
            score_counts=self.score_counts + other.score_counts,
            score_sum=self.score_sum + other.score_sum,
            score_observed=self.score_observed + other.score_observed,
        )


@dataclass(frozen=True)
class PartMonitored:
    """What one part came to: small tables the client sums, never a household's row."""

    part: str
    county_id: str
    counts: pd.DataFrame
    """`transition_counts` of the part's households, by village, without its total row."""
    movements: pd.DataFrame
    flagged: pd.Series
    """Households in a monitoring category now, by village."""
    drift: tuple[RoundBins, RoundBins] | None
    """(previous, current) round's bin counts; None when the job measures no drift."""
    seconds: float
    worker: str


@dataclass(frozen=True)
class ProvinceMonitor:
    """The province's comparison of two rounds: counts by village and by county (with the province row),
    category movements per county and for the province, drift by county (None without edges), summary."""

    counts_by_village: pd.DataFrame
    counts_by_county: pd.DataFrame
    movements: pd.DataFrame
    movements_by_county: Mapping[str, pd.DataFrame]
    drift: pd.DataFrame | None
    score_drift: pd.DataFrame | None
    summary: dict[str, Any]


# ------------------------------------------------------------------------------------------- planning


def plan_monitor_parts(
    current_sizes: Mapping[str, Mapping[str, int]],
    previous_sizes: Mapping[str, Mapping[str, int]],
    households_per_part: int,
) -> list[Part]:
    """The parts of a comparison: `plan_parts` over the villages of either round, in village order (a village
    sized by its current households, else by its previous ones), so that a village emptied since the previous
    round still has a part to count its leavers. Pure."""
    sizes = {
        county_id: {
            village: current_sizes.get(county_id, {}).get(
                village, previous_sizes.get(county_id, {}).get(village, 0)
            )
            for village in sorted(
                set(current_sizes.get(county_id, {})) | set(previous_sizes.get(county_id, {}))
            )
        }
        for county_id in dict.fromkeys([*current_sizes, *previous_sizes])
    }
    return plan_parts(sizes, households_per_part)


def reference_edges(references: Sequence[pd.DataFrame], features: Sequence[str], bins: int) -> Edges:
    """Each feature's `bins` quantile bins in the first reference frame that observed it (the pinned models'
    held-out training rows): bins fixed before any part runs, the same for every county and round. Features
    no reference observed are left out. Pure."""
    edges = []
    for name in features:
        observed = next(
            (
                values
                for frame in references
                if name in frame.columns and len(values := _observed(frame[name]))
            ),
            None,
        )
        if observed is not None:
            edges.append((name, tuple(float(edge) for edge in quantile_edges(np.sort(observed), bins))))
    return tuple(edges)


def training_references(county_versions: CountyVersions) -> list[pd.DataFrame]:
    """The held-out rows each pinned model version (of every county: one binning for the province) was
    evaluated on at training (MLflow), in the order of the versions' names."""
    from mlflow import MlflowClient

    from training.tracking import held_out_rows, tracking_uri

    client = MlflowClient(tracking_uri())
    pinned = sorted({(name, version) for _, versions in county_versions for _, name, version in versions})
    runs = [client.get_model_version(name, version).run_id for name, version in pinned]
    return [held_out_rows(run_id) for run_id in runs if run_id]


# ------------------------------------------------------------------------------------- on a worker


def monitor_part(part: Part, job: MonitorJob) -> PartMonitored:
    """Score both rounds of one part's households on this worker and count their transitions (module
    docstring: which households, and why the previous round is read by more villages than the part's)."""
    started = time.perf_counter()
    prepare_worker()
    engine = worker_engine(job.db_url)
    predictor = _predictor(job.tracking_uri, versions_of(job.versions, part.county_id), job.policy_file)
    policy = predictor.policy
    now_survey = _read(engine, part.county_id, job.current, part.villages)
    now = _scored(predictor, now_survey, job.current)
    came_from = villages_in_round(now_survey, job.previous)
    before_villages = sorted(set(part.villages) | set(came_from.to_numpy()))
    before_survey = _read(engine, part.county_id, job.previous, before_villages)
    before = _scored(predictor, before_survey, job.previous)
    now_facts, before_facts = _facts(now, now_survey, policy), _facts(before, before_survey, policy)
    candidates = departed(before_facts, now_facts.index, part.villages)
    elsewhere = _present_in_round(engine, part.county_id, candidates, job.current)
    transitions = household_transitions(
        before_facts.loc[owned_previously(before_facts, now_facts.index, candidates, elsewhere)], now_facts
    )
    if job.out is not None:
        _write_part(transitions.reset_index().assign(county_id=part.county_id), Path(job.out), part)
    drift = None
    if job.drift_edges:
        drift = (
            round_bins(_living_in(before, part.villages), job.drift_edges),
            round_bins(now, job.drift_edges),
        )
    return PartMonitored(
        part=part.name,
        county_id=part.county_id,
        counts=part_counts(transitions),
        movements=category_movements(transitions),
        flagged=flagged_by_village(transitions),
        drift=drift,
        seconds=round(time.perf_counter() - started, 3),
        worker=f"{socket.gethostname()}:{os.getpid()}",
    )


def _read(engine: Any, county_id: str, round_: int, villages: Sequence[str]) -> Survey | None:
    """The villages' households of the round with their earlier rounds, conformed as the single machine
    conforms the county; None when the villages have no household in the round. Without the village
    table: it lists only these villages, while a household that moved in has earlier rows in another
    (which `conform` would refuse), and nothing the comparison computes reads it."""
    survey = read_register_villages(engine, county_id, round_, villages)
    return None if survey.households.empty else conform(dataclasses.replace(survey, villages=None))


def _scored(predictor: RiskPredictor, survey: Survey | None, round_: int) -> ScoredRound | None:
    """Categories and risks of the round (no reasons: the comparison reads none)."""
    return None if survey is None else scored_round(predictor, survey, round_, explain=False)


def _facts(scored: ScoredRound | None, survey: Survey | None, policy: Policy) -> pd.DataFrame:
    if scored is None or survey is None:
        return no_facts()
    return round_facts(scored, survey, policy)


def no_facts() -> pd.DataFrame:
    """A round without households, in the shape `household_transitions` reads."""
    return pd.DataFrame(
        {
            "village_id": pd.Series([], dtype=object),
            "poor": pd.Series([], dtype=np.float64),
            "identified": pd.Series([], dtype=np.float64),
            "exited": pd.Series([], dtype=np.float64),
            "category": pd.Series([], dtype=object),
        },
        index=pd.Index([], dtype=object, name="household_id"),
    ).loc[:, list(ROUND_COLUMNS)]


def villages_in_round(survey: Survey | None, round_: int) -> pd.Series:
    """Where the survey's households lived in `round_` (household -> village): for the households read by
    their current village, the previous villages whose context their previous round needs."""
    if survey is None:
        return pd.Series([], dtype=object)
    households = survey.households
    rows = households.loc[households["round"] == round_]
    return pd.Series(
        rows["village_id"].astype(str).to_numpy(), index=rows["household_id"].astype(str).to_numpy()
    )


def departed(before: pd.DataFrame, now: pd.Index, villages: Sequence[str]) -> pd.Index:
    """Households of `villages` in the previous round that are not in them now: they left the panel, or
    moved to a village outside the part. Pure."""
    lived_here = before.index[before["village_id"].astype(str).isin(list(villages)).to_numpy()]
    return lived_here.difference(now)


def owned_previously(
    before: pd.DataFrame, now: pd.Index, departed: pd.Index, elsewhere: Iterable[str]
) -> pd.Index:
    """The previous round's households this part counts: those living in its villages now, and those that
    departed and are in no village of the county now (each other household is counted where it lives now).
    Pure."""
    left = departed.difference(pd.Index(list(elsewhere), dtype=object))
    return before.index.intersection(now).union(left)


def _present_in_round(engine: Any, county_id: str, households: pd.Index, round_: int) -> set[str]:
    """Those of `households` the register holds a row of in the county's round `round_`."""
    if households.empty:
        return set()
    histories = registered_histories(engine, county_id, [str(one) for one in households], up_to=round_)
    return {
        household for household, rounds in histories.items() if any(one.round == round_ for one in rounds)
    }


def _living_in(scored: ScoredRound | None, villages: Sequence[str]) -> ScoredRound | None:
    """The scored round restricted to the households living in `villages` in it: the previous round of a
    part is also scored for the villages the movers came from, counted there."""
    if scored is None:
        return None
    households = scored.features.index.get_level_values("household_id").astype(str)
    chosen = scored.villages.astype(str).reindex(households).isin(list(villages)).to_numpy(dtype=bool)
    return ScoredRound(
        features=scored.features.loc[chosen],
        scores=scored.scores.loc[chosen],
        categories=scored.categories.loc[chosen],
        villages=scored.villages,
        lang=scored.lang,
    )


# ------------------------------------------------------------------------------------ small results


def part_counts(transitions: pd.DataFrame) -> pd.DataFrame:
    """`monitoring.transitions.transition_counts` by village without its total row (the client adds the
    totals); all zero columns when the part counts no household."""
    if transitions.empty:
        return pd.DataFrame(columns=list(COUNT_COLUMNS), dtype=np.int64).rename_axis("village_id")
    return transition_counts(transitions).drop(index=COUNTY)


def flagged_by_village(transitions: pd.DataFrame) -> pd.Series:
    """Households in a monitoring category in the current round, by village (every village listed)."""
    monitored = (transitions["current_category"] != NOT_MONITORED).astype(np.int64)
    return monitored.groupby(transitions["village_id"], sort=True).sum().rename(FLAGGED)


def round_bins(scored: ScoredRound | None, edges: Edges) -> RoundBins:
    """The round's households counted per bin of each feature of `edges` and of the larger risk."""
    rows = 0 if scored is None else len(scored.features)
    counts, missing = {}, {}
    for name, inner in edges:
        values = (
            np.empty(0)
            if scored is None
            else scored.features[name].to_numpy(dtype=np.float64, na_value=np.nan)
        )
        observed = values[~np.isnan(values)]
        counts[name] = bin_counts(observed, inner)
        missing[name] = int(len(values) - len(observed))
    risks = np.empty(0) if scored is None else larger_risk(scored.scores)
    risks = risks[~np.isnan(risks)]
    return RoundBins(
        rows=rows,
        counts=counts,
        missing=missing,
        score_counts=bin_counts(risks, SCORE_EDGES),
        score_sum=float(risks.sum()),
        score_observed=len(risks),
    )


def bin_counts(observed: np.ndarray, inner_edges: Sequence[float]) -> np.ndarray:
    """Values per bin, bins right-closed as in `monitoring.drift` (bin i holds (edge[i-1], edge[i]])."""
    positions = np.searchsorted(np.asarray(inner_edges, dtype=np.float64), observed, side="left")
    return np.bincount(positions, minlength=len(inner_edges) + 1).astype(np.int64)


def _observed(values: pd.Series) -> np.ndarray:
    numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    return numbers[~np.isnan(numbers)]


# ------------------------------------------------------------------------------------ on the client


def monitor_province(
    client: Any,
    parts: Sequence[Part],
    job: MonitorJob,
    progress: Callable[[PartMonitored], None] | None = None,
) -> ProvinceMonitor:
    """Every part compared on the cluster `client` is connected to (retried on another worker when one
    dies), summed into the province's tables; `progress` hears of each part as it finishes."""
    name = f"povrisk-monitor-{job.previous}-{job.current}"
    done = run_parts(client, monitor_part, parts, job, name, progress)
    policy = load_policy(Path(job.policy_file)) if job.policy_file else load_policy()
    return province_result(done, job.previous, job.current, policy)


def province_result(
    done: Sequence[PartMonitored], previous: int, current: int, policy: Policy
) -> ProvinceMonitor:
    """The parts' small tables summed by village, by county and for the province (pure)."""
    by_village = counts_by_village(done)
    by_county = counts_by_county(by_village)
    movements_by_county = {
        county_id: _summed([one.movements for one in done if one.county_id == county_id])
        for county_id in sorted({one.county_id for one in done})
    }
    movements = _summed(list(movements_by_county.values()))
    drift, scores = province_drift(done, policy.drift.psi_threshold)
    totals = by_county.loc[PROVINCE].to_numpy(dtype=np.int64)
    province = {str(name): int(value) for name, value in zip(by_county.columns, totals, strict=True)}
    summary: dict[str, Any] = {
        "previous_round": int(previous),
        "current_round": int(current),
        "households": province["households"],
        FLAGGED: province[FLAGGED],
        **{name: province[name] for name in TRANSITIONS},
        "counties": len(movements_by_county),
        "parts": len(done),
    }
    if drift is not None:
        at_province = drift[drift["county_id"] == PROVINCE]
        summary["drifted_features"] = int(at_province["drifted"].sum())
    summary["policy_version"] = policy.version
    return ProvinceMonitor(by_village, by_county, movements, movements_by_county, drift, scores, summary)


def counts_by_village(done: Sequence[PartMonitored]) -> pd.DataFrame:
    """Counts of every village of the province (index county_id, village_id, sorted) with `flagged_now`."""
    frames = [
        one.counts.join(one.flagged, how="outer").fillna(0).assign(county_id=one.county_id).reset_index()
        for one in done
    ]
    columns = ["county_id", "village_id", *COUNT_COLUMNS, FLAGGED]
    together = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)
    summed = together.groupby(["county_id", "village_id"], sort=True)[[*COUNT_COLUMNS, FLAGGED]].sum()
    return summed.astype(np.int64)


def counts_by_county(by_village: pd.DataFrame) -> pd.DataFrame:
    """One row per county (sorted), then the province's row: the sums of the villages'."""
    by_county = by_village.groupby(level="county_id", sort=True).sum()
    province = by_county.sum().to_frame(PROVINCE).T
    return pd.concat([by_county, province]).astype(np.int64).rename_axis("county_id")


def _summed(tables: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """Category movement tables added cell by cell (every category listed, zeros without a table)."""
    total = pd.DataFrame(0, index=list(CATEGORIES), columns=list(CATEGORIES), dtype=np.int64)
    for table in tables:
        total = total.add(table, fill_value=0)
    return total.astype(np.int64).rename_axis(index="previous_category", columns="current_category")


def province_drift(
    done: Sequence[PartMonitored], psi_threshold: float
) -> tuple[pd.DataFrame | None, pd.DataFrame | None]:
    """(Feature drift by county and for the province, `DRIFT_COLUMNS`; the risk score's drift,
    `SCORE_DRIFT_COLUMNS`) from the parts' bin counts summed; (None, None) when the parts measured none."""
    measured = [one for one in done if one.drift is not None]
    if not measured or len(measured) != len(done):
        return None, None
    totals: dict[str, tuple[RoundBins, RoundBins]] = {}
    for one in measured:
        assert one.drift is not None
        for name in (one.county_id, PROVINCE):
            before, now = one.drift
            if name in totals:
                before, now = totals[name][0] + before, totals[name][1] + now
            totals[name] = (before, now)
    names = [*sorted(name for name in totals if name != PROVINCE), PROVINCE]
    features = pd.concat(
        [feature_drift(name, *totals[name], psi_threshold) for name in names], ignore_index=True
    )
    scores = pd.DataFrame(
        [score_drift_row(name, *totals[name]) for name in names], columns=list(SCORE_DRIFT_COLUMNS)
    )
    return features, scores


def feature_drift(county_id: str, before: RoundBins, now: RoundBins, psi_threshold: float) -> pd.DataFrame:
    """PSI of each feature's current bins against its previous ones (NaN when a side observed none), the
    missing shares, and whether it drifted (PSI above the policy's threshold)."""
    rows = []
    for name, reference in before.counts.items():
        current = now.counts[name]
        psi = (
            psi_from_shares(reference / reference.sum(), current / current.sum())
            if reference.sum() and current.sum()
            else float("nan")
        )
        rows.append(
            (
                county_id,
                name,
                psi,
                _share(before.missing[name], before.rows),
                _share(now.missing[name], now.rows),
                bool(psi > psi_threshold),
            )
        )
    return pd.DataFrame(rows, columns=list(DRIFT_COLUMNS))


def score_drift_row(county_id: str, before: RoundBins, now: RoundBins) -> tuple[Any, ...]:
    """PSI of the larger risk over `SCORE_EDGES`, its mean in each round and the shift of the mean."""
    reference, current = before.score_counts, now.score_counts
    psi = (
        psi_from_shares(reference / reference.sum(), current / current.sum())
        if reference.sum() and current.sum()
        else float("nan")
    )
    mean_reference = _share(before.score_sum, before.score_observed)
    mean_current = _share(now.score_sum, now.score_observed)
    return county_id, psi, mean_reference, mean_current, mean_current - mean_reference


def _share(part: float, whole: int) -> float:
    return float(part / whole) if whole else float("nan")


# ------------------------------------------------------------------------------------------ the report


def province_report_html(result: ProvinceMonitor, lang: Language = "zh") -> str:
    """The province's report as one self-contained HTML document in `lang` (every word from the message
    catalogue, codes never shown): summary, transitions by county with the province row, category
    movements for the province (table and plot) and per county, drift by county. Villages and households
    are in the tables written beside it, not here: a province has thousands of villages."""
    from monitoring.report import STYLE, figure_data_uri, figure_language, movements_figure

    summary = result.summary
    title = message(
        "report.province_title", lang, previous=summary["previous_round"], current=summary["current_round"]
    )
    drawn = figure_language(lang)
    movements_uri = figure_data_uri(movements_figure(result.movements, drawn), drawn)
    parts = [
        "<!DOCTYPE html>",
        f'<html lang="{"zh-CN" if lang == "zh" else "en"}"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f"<h2>{html.escape(message('report.province_summary', lang))}</h2>",
        _summary_html(summary, lang),
        f"<h2>{html.escape(message('report.transitions_by_county', lang))}</h2>",
        _html_table(_worded_counts(result.counts_by_county, lang)),
        f"<p>{html.escape(message('report.province_files', lang))}</p>",
        f"<h2>{html.escape(message('report.movements', lang))}</h2>",
        f"<p>{html.escape(message('report.movements_lead', lang))}</p>",
        _html_table(_worded_movements(result.movements, lang)),
        f'<img alt="{html.escape(message("report.movements", lang))}" src="{movements_uri}">',
    ]
    for county_id, movements in result.movements_by_county.items():
        heading = message("report.movements_in_county", lang, county=county_id)
        parts += [f"<h3>{html.escape(heading)}</h3>", _html_table(_worded_movements(movements, lang))]
    parts.append(f"<h2>{html.escape(message('report.drift', lang))}</h2>")
    if result.drift is None or result.score_drift is None:
        parts.append(f"<p>{html.escape(message('report.province_no_drift', lang))}</p>")
    else:
        parts += [
            f"<p>{html.escape(message('report.province_drift_lead', lang))}</p>",
            _html_table(_worded_drift(result.drift, result.score_drift, lang)),
        ]
    parts.append("</body></html>")
    return "\n".join(parts)


def _summary_html(summary: Mapping[str, Any], lang: Language) -> str:
    from monitoring.report import column_words

    items = "".join(
        f"<li>{html.escape(column_words(str(name), lang))}: "
        f"<b>{html.escape(f'{value:,}' if isinstance(value, int) else str(value))}</b></li>"
        for name, value in summary.items()
    )
    return f"<ul>{items}</ul>"


def _county_words(county_id: str, lang: Language) -> str:
    return message("report.province_total", lang) if county_id == PROVINCE else str(county_id)


def _worded_counts(by_county: pd.DataFrame, lang: Language) -> pd.DataFrame:
    from monitoring.report import column_words

    worded = by_county.rename(columns=lambda name: column_words(str(name), lang))
    worded.index = pd.Index(
        [_county_words(str(county_id), lang) for county_id in by_county.index],
        name=column_words("county_id", lang),
    )
    return worded


def _worded_movements(movements: pd.DataFrame, lang: Language) -> pd.DataFrame:
    from monitoring.report import column_words

    worded = movements.copy()
    worded.index = pd.Index(
        [label("category", str(code), lang) for code in movements.index],
        name=column_words("previous_category", lang),
    )
    worded.columns = pd.Index(
        [label("category", str(code), lang) for code in movements.columns],
        name=column_words("current_category", lang),
    )
    return worded


def _worded_drift(drift: pd.DataFrame, scores: pd.DataFrame, lang: Language) -> pd.DataFrame:
    """One row per county (then the province): the drifted features in words, and the risk score's drift."""
    from monitoring.report import column_words, indicator_words

    separator = "、" if lang == "zh" else ", "
    drifted = {
        str(county_id): separator.join(
            indicator_words(str(name), lang) for name in rows.loc[rows["drifted"], "feature"]
        )
        or message("report.none", lang)
        for county_id, rows in drift.groupby("county_id", sort=False)
    }
    table = pd.DataFrame(
        {
            column_words("drifted_features_named", lang): [
                drifted.get(str(one), "") for one in scores["county_id"]
            ],
            **{
                column_words(f"score_{name}", lang): scores[name].to_numpy(dtype=np.float64)
                for name in ("psi", "mean_reference", "mean_current", "mean_shift")
            },
        },
        index=pd.Index(
            [_county_words(str(one), lang) for one in scores["county_id"]],
            name=column_words("county_id", lang),
        ),
    )
    return table


def _html_table(frame: pd.DataFrame) -> str:
    return frame.to_html(escape=True, border=0, na_rep="", float_format=lambda value: f"{value:.3f}")
