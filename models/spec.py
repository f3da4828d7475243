"""The LightGBM specification: hyper-parameters as a frozen dataclass, defaults in `lightgbm.yaml`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

DEFAULT_SPEC_PATH = Path(__file__).with_name("lightgbm.yaml")


@dataclass(frozen=True)
class LightGBMSpec:
    """Hyper-parameters of one gradient-boosted tree model for a binary task.

    `n_estimators` is an upper bound: boosting stops after `early_stopping_rounds` rounds without
    improvement of the log-loss on `validation_share` of the training households.
    """

    num_leaves: int = 15
    learning_rate: float = 0.05
    n_estimators: int = 400
    early_stopping_rounds: int = 30
    min_child_samples: int = 20
    reg_lambda: float = 1.0
    feature_fraction: float = 0.9
    bagging_fraction: float = 0.8
    bagging_freq: int = 1
    validation_share: float = 0.2
    num_threads: int = 2
    parallel_min_rows: int = 20_000
    deterministic: bool = True
    monotone: Mapping[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.num_leaves < 2:
            raise ValueError(f"num_leaves must be >= 2, got {self.num_leaves}")
        if not 0.0 < self.learning_rate <= 1.0:
            raise ValueError(f"learning_rate must be in (0, 1], got {self.learning_rate}")
        if self.n_estimators < 1:
            raise ValueError(f"n_estimators must be >= 1, got {self.n_estimators}")
        if not 0.0 < self.validation_share < 1.0:
            raise ValueError(f"validation_share must be in (0, 1), got {self.validation_share}")
        bad = {name: d for name, d in self.monotone.items() if d not in (-1, 0, 1)}
        if bad:
            raise ValueError(f"monotone directions must be -1, 0 or 1, got {bad}")
        for name in ("feature_fraction", "bagging_fraction"):
            value = getattr(self, name)
            if not 0.0 < value <= 1.0:
                raise ValueError(f"{name} must be in (0, 1], got {value}")

    def params(self, seed: int, n_rows: int | None = None) -> dict[str, Any]:
        """Native `lightgbm.train` parameters for a binary log-loss model, seeded for reproducibility.

        With `n_rows` below `parallel_min_rows` training uses one thread (see lightgbm.yaml).
        """
        threads = 1 if n_rows is not None and n_rows < self.parallel_min_rows else self.num_threads
        return {
            "objective": "binary",
            "metric": "binary_logloss",
            "num_leaves": self.num_leaves,
            "learning_rate": self.learning_rate,
            "min_data_in_leaf": self.min_child_samples,
            "lambda_l2": self.reg_lambda,
            "feature_fraction": self.feature_fraction,
            "bagging_fraction": self.bagging_fraction,
            "bagging_freq": self.bagging_freq,
            "num_threads": threads,
            "deterministic": self.deterministic,
            "force_row_wise": True,
            "seed": seed,
            "verbosity": -1,
        }

    def monotone_constraints(self, feature_names: Sequence[str]) -> list[int]:
        """LightGBM `monotone_constraints`: the direction of each feature (0 = free), in column order."""
        return [int(self.monotone.get(name, 0)) for name in feature_names]

    def as_dict(self) -> dict[str, Any]:
        """Plain dict of the hyper-parameters (for logging)."""
        return asdict(self) | {"monotone": dict(self.monotone)}


def load_spec(path: Path | None = None) -> LightGBMSpec:
    """Read a spec from YAML (default: `models/lightgbm.yaml`); unknown keys raise `ValueError`."""
    raw = yaml.safe_load((path or DEFAULT_SPEC_PATH).read_text(encoding="utf-8")) or {}
    known = {field.name for field in fields(LightGBMSpec)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ValueError(f"unknown LightGBM spec keys: {unknown}")
    return LightGBMSpec(**raw)
