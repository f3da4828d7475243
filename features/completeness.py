"""Data completeness: how much of a model's explanatory weight rests on what is known of a household.

A model's explanatory weight is the mean |SHAP| of each of its features over its training rows, saved with
the model as shares summing to 1 (``TaskModel.explanatory_weight``). A feature is known for a household
when the inputs it reads, directly or through the indicators before it, are known
(``FeatureFrames.known_inputs``), judged as features/frame.py resolves them (``known_features``). A
household's completeness for a model is the weight of its known features; its data completeness is the
smallest over the models that score it. Below the policy's ``data_completeness_minimum`` its data is
insufficient: the answer has no tier and names the missing blocks, and monitoring places it only on
facts, never on a model's word (monitoring/categories.py).

A trend indicator needs no earlier round to count as known: a household new to the register is new, not
incomplete. A model saved without explanatory weights (trained before they were kept) has no measured
completeness (NaN), and its answers are not held back.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from types import MappingProxyType

import numpy as np
import pandas as pd

from features.frame import POLICY_PARAMETER, parameters
from features.lineage import registry_base_inputs
from features.members import MEMBER_AGGREGATE_INPUTS
from features.registry import INDICATORS
from survey.catalogue import catalogue_section
from survey.schema import BLOCKS

COMPLETENESS = "data_completeness"
SUFFICIENT = "sufficient_data"
MISSING_BLOCKS = "missing_blocks"

OTHER_BLOCK = "household"
"""The block of a base column no other block holds (core facts of the household)."""
DATA_BLOCKS: dict[str, tuple[str, ...]] = {
    **BLOCKS,
    "housing": (
        *BLOCKS["housing"],
        *("rooms", "bedrooms", "toilet", "tenure", "rent_paid", "wall_state", "roof_state"),
        *("floor_state", "floor_material", "ceiling"),
    ),
    "assets": ("durable_assets", "mobile_phones"),
    "members": tuple(MEMBER_AGGREGATE_INPUTS),
}
"""The blocks an answer names as missing: the survey's household blocks (survey/schema.py ``BLOCKS``)
with the dwelling's other columns under housing, the assets, and the member table's aggregates."""
BLOCK_ORDER = (*DATA_BLOCKS, OTHER_BLOCK)


@cache
def block_labels() -> Mapping[str, Mapping[str, str]]:
    """Each block's name for a person, by language (the message catalogue's `block` section)."""
    labels = catalogue_section("block")
    missing = sorted(set(BLOCK_ORDER) - set(labels))
    if missing:
        raise ValueError(f"the message catalogue has no label for block(s): {', '.join(missing)}")
    return MappingProxyType(dict(labels))


def block_of(base: str) -> str:
    """The block a base column belongs to (``OTHER_BLOCK`` when none lists it)."""
    return next((block for block, columns in DATA_BLOCKS.items() if base in columns), OTHER_BLOCK)


KnownInputs = Mapping[str, np.ndarray]
"""Per base column, which rows have it (``FeatureFrames.known_inputs``)."""


def known_features(known_inputs: KnownInputs, feature_names: Sequence[str], rows: int) -> np.ndarray:
    """(rows x features) bool: whether each feature's inputs are known (``known_indicators``)."""
    return _columns(known_indicators(known_inputs, rows), feature_names, rows)


def known_indicators(known_inputs: KnownInputs, rows: int) -> dict[str, np.ndarray]:
    """Per registered indicator, the rows whose inputs are known, judged as features/frame.py resolves
    them: every required input known (a base column the frame lacks is unknown everywhere), an optional
    input known where the survey has it (absent, it is left out, as the indicator leaves it out), and for
    an indicator with only optional inputs, at least one of them present."""
    available = dict(known_inputs)
    nowhere = np.zeros(rows, dtype=bool)
    for indicator in INDICATORS:
        inputs = [
            (name, required) for name, required in parameters(indicator.function) if name != POLICY_PARAMETER
        ]
        only_optional_and_none_present = not any(required or name in available for name, required in inputs)
        known = nowhere if inputs and only_optional_and_none_present else ~nowhere
        for name, required in inputs:
            if name in available:
                known = known & available[name]
            elif required:
                known = nowhere
        available[indicator.name] = known
    return available


def _columns(known: Mapping[str, np.ndarray], names: Sequence[str], rows: int) -> np.ndarray:
    if not names:
        return np.ones((rows, 0), dtype=bool)
    return np.column_stack([known[name] for name in names])


def weight_vector(weights: Mapping[str, float], feature_names: Sequence[str]) -> np.ndarray:
    """A model's explanatory weights in the order of ``feature_names`` (0 for a feature without one)."""
    return np.array([float(weights.get(name, 0.0)) for name in feature_names], dtype=np.float64)


def completeness(known: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Per row, the share of ``weights`` on known features; NaN for every row when the weights are all 0
    (nothing measured)."""
    total = float(weights.sum())
    if not total > 0:
        return np.full(len(known), np.nan)
    # a row-wise sum, not a matrix product: the same row gives the same share in a batch of any size
    return np.where(known, weights, 0.0).sum(axis=1) / total


@dataclass(frozen=True)
class ModelWeights:
    """What completeness needs of one model: its features and their explanatory weights."""

    feature_names: tuple[str, ...]
    weights: Mapping[str, float]


def data_completeness(
    known_inputs: KnownInputs, index: pd.Index, models: Sequence[ModelWeights], minimum: float
) -> pd.DataFrame:
    """Per household (``index``, the rows of ``known_inputs``): ``data_completeness`` (the smallest over
    the models; NaN when none has weights), ``sufficient_data`` (completeness unmeasured or at least
    ``minimum``) and ``missing_blocks`` (tuples of block codes, in BLOCK_ORDER, of the unknown inputs of
    weighted features unknown for the household; empty for a household with sufficient data)."""
    rows = len(index)
    indicators = known_indicators(known_inputs, rows)
    weighed = [
        (
            model.feature_names,
            _columns(indicators, model.feature_names, rows),
            weight_vector(model.weights, model.feature_names),
        )
        for model in models
    ]
    shares = [completeness(known, weights) for _, known, weights in weighed]
    share = np.fmin.reduce(shares) if shares else np.full(rows, np.nan)
    sufficient = ~(share < minimum)
    blamed = np.zeros((rows, len(BLOCK_ORDER)), dtype=bool)
    if not sufficient.all():  # blocks are named only for the households short of data
        for names, known, weights in weighed:
            blamed |= _blocks_of_unknown(known_inputs, known, names, weights)
        blamed &= ~sufficient[:, None]
    codes = np.array(BLOCK_ORDER, dtype=object)
    return pd.DataFrame(
        {COMPLETENESS: share, SUFFICIENT: sufficient, MISSING_BLOCKS: [tuple(codes[row]) for row in blamed]},
        index=index,
    )


def _blocks_of_unknown(
    known_inputs: KnownInputs, known: np.ndarray, feature_names: Sequence[str], weights: np.ndarray
) -> np.ndarray:
    """(rows x BLOCK_ORDER) bool: the blocks of the unknown base columns (missing in the row, or absent
    from the frame) that a weighted feature unknown in the row reads."""
    bases = registry_base_inputs()
    blamed = np.zeros((len(known), len(BLOCK_ORDER)), dtype=bool)
    for position, name in enumerate(feature_names):
        if not weights[position] > 0:
            continue
        unknown_feature = ~known[:, position]
        if not unknown_feature.any():
            continue
        for base in bases[name]:
            unknown_base = ~known_inputs[base] if base in known_inputs else unknown_feature
            blamed[:, BLOCK_ORDER.index(block_of(base))] |= unknown_feature & unknown_base
    return blamed


def missing_text(blocks: Sequence[str], lang: str) -> str:
    """The missing blocks for a person, in ``lang`` ("收入、住房" / "income, housing")."""
    labels = block_labels()
    separator = "、" if lang == "zh" else ", "
    return separator.join(labels[block][lang] for block in blocks)
