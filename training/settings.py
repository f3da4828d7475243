"""Training settings as data (`training/settings.yaml`) in frozen dataclasses."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from models.spec import LightGBMSpec

DEFAULT_SETTINGS_PATH = Path(__file__).with_name("settings.yaml")


@dataclass(frozen=True)
class PromotionRule:
    """Challenger wins when its `metric` beats the champion's by more than `min_improvement` and, where
    both models' risks are on the same held-out households, the paired bootstrap interval (95 %,
    `replicates` resamples of households) of the difference (in the better direction) lies above
    `interval_floor` (None: no interval rule). `other_source_gives_way`: a champion trained on another
    county of the register (run tags `source` `county:<id>`, different) gives way to the challenger."""

    metric: str = "roc_auc"
    higher_is_better: bool = True
    min_improvement: float = 0.0
    interval_floor: float | None = -0.005
    replicates: int = 1000
    other_source_gives_way: bool = True

    def __post_init__(self) -> None:
        if self.replicates < 1:
            raise ValueError(f"promotion.replicates must be >= 1, got {self.replicates}")

    def _gain(self, challenger: float, champion: float) -> float:
        return challenger - champion if self.higher_is_better else champion - challenger

    def _low_gain(self, interval: tuple[float, float]) -> float:
        """The interval's end least favourable to the challenger, as a gain."""
        return interval[0] if self.higher_is_better else -interval[1]

    def challenger_wins(
        self, challenger: float, champion: float, interval: tuple[float, float] | None = None
    ) -> bool:
        if not self._gain(challenger, champion) > self.min_improvement:
            return False
        if interval is None or self.interval_floor is None:
            return True
        return bool(self._low_gain(interval) > self.interval_floor)

    def describe(self, challenger: float, champion: float, interval: tuple[float, float] | None) -> str:
        """The rule applied, in words, with the figures."""
        text = f"difference {challenger - champion:+.4f}, better by more than {self.min_improvement} needed"
        if interval is not None and self.interval_floor is not None:
            text += (
                f"; 95% interval of the difference [{interval[0]:+.4f}, {interval[1]:+.4f}] "
                f"({self.replicates} household resamples), its worse end must be above {self.interval_floor}"
            )
        return text


@dataclass(frozen=True)
class TuningSettings:
    """Optuna search inside each outer training fold (`training.tuning`).

    `enabled` false: the base spec of `models/lightgbm.yaml` is used as is. Otherwise at most `n_trials`
    TPE trials (sampler seeded with `seed` + the evaluation seed), stopped after `timeout_seconds` per fold,
    each scored by an `inner_folds`-fold grouped cross-validation on the training fold.
    """

    enabled: bool = True
    n_trials: int = 30
    timeout_seconds: float = 60.0
    inner_folds: int = 3
    seed: int = 0

    def __post_init__(self) -> None:
        if self.n_trials < 1:
            raise ValueError(f"tuning.n_trials must be >= 1, got {self.n_trials}")
        if self.inner_folds < 2:
            raise ValueError(f"tuning.inner_folds must be >= 2, got {self.inner_folds}")
        if self.timeout_seconds <= 0:
            raise ValueError(f"tuning.timeout_seconds must be > 0, got {self.timeout_seconds}")


@dataclass(frozen=True)
class BaselineColumns:
    """Candidate indicators of the fitted baselines; the first present candidate of each entry is used.

    `traditional_three`: one entry (list of candidates, best proxy first) per traditional dimension
    (income, labour, livestock/assets). `proxy_means_test`: every present column is used.
    """

    traditional_three: dict[str, tuple[str, ...]] = field(default_factory=dict)
    proxy_means_test: tuple[str, ...] = ()


@dataclass(frozen=True)
class VerifiedCalibration:
    """Calibrate on field-verified outcomes (the survey's random `verification` sample) for `tasks`,
    when the training rows hold at least `min_per_class` verified rows of each class; else on all rows."""

    tasks: tuple[str, ...] = ()
    min_per_class: int = 30

    def __post_init__(self) -> None:
        if self.min_per_class < 1:
            raise ValueError(f"verified_calibration.min_per_class must be >= 1, got {self.min_per_class}")


@dataclass(frozen=True)
class ModelCandidates:
    """The candidates training chooses among by inner validation (`training.candidates`): the LightGBM
    model, an L2 logistic regression on the same indicators (inverse penalty `logistic_c`), and blends of
    their margins; `blend_weights` are the logistic model's weights tried (0 = LightGBM alone, 1 = the
    logistic regression alone)."""

    blend_weights: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0)
    logistic_c: float = 1.0

    def __post_init__(self) -> None:
        if not self.blend_weights:
            raise ValueError("candidates.blend_weights needs at least one weight (0 = LightGBM alone)")
        outside = [weight for weight in self.blend_weights if not 0.0 <= weight <= 1.0]
        if outside:
            raise ValueError(f"candidates.blend_weights must lie in [0, 1], got {outside}")
        if self.logistic_c <= 0:
            raise ValueError(f"candidates.logistic_c must be > 0, got {self.logistic_c}")


@dataclass(frozen=True)
class ComparisonSettings:
    """`povrisk compare`: a township or village gets its own rows when it holds at least
    `min_area_households` held-out households (below, its interval is mostly noise)."""

    min_area_households: int = 100

    def __post_init__(self) -> None:
        if self.min_area_households < 1:
            raise ValueError(f"comparison.min_area_households must be >= 1, got {self.min_area_households}")


@dataclass(frozen=True)
class TrainingSettings:
    cv_folds: int = 5
    shap_summary_rows: int = 2000
    promotion: PromotionRule = PromotionRule()
    complexity_candidates: tuple[dict[str, Any], ...] = field(default_factory=lambda: ({},))
    tuning: TuningSettings = TuningSettings()
    baselines: BaselineColumns = BaselineColumns()
    track_evaluations: bool = True
    verified_calibration: VerifiedCalibration = VerifiedCalibration()
    candidates: ModelCandidates = ModelCandidates()
    comparison: ComparisonSettings = ComparisonSettings()

    def __post_init__(self) -> None:
        if self.cv_folds < 2:
            raise ValueError(f"cv_folds must be >= 2, got {self.cv_folds}")
        if not self.complexity_candidates:
            raise ValueError("complexity_candidates needs at least one entry ({} = the base spec)")

    def candidate_specs(self, base: LightGBMSpec) -> tuple[LightGBMSpec, ...]:
        """The base spec with each candidate's overrides applied (unknown keys raise TypeError)."""
        return tuple(replace(base, **overrides) for overrides in self.complexity_candidates)


def load_training_settings(path: Path | None = None) -> TrainingSettings:
    """Read `training/settings.yaml` (or `path`)."""
    raw = yaml.safe_load((path or DEFAULT_SETTINGS_PATH).read_text(encoding="utf-8")) or {}
    promotion = PromotionRule(**raw.pop("promotion", {}))
    comparison = ComparisonSettings(**(raw.pop("comparison", {}) or {}))
    candidates = tuple(dict(entry or {}) for entry in raw.pop("complexity_candidates", [{}]))
    tuning = TuningSettings(**raw.pop("tuning", {}))
    verified_raw = dict(raw.pop("verified_calibration", {}) or {})
    verified = VerifiedCalibration(tasks=tuple(verified_raw.pop("tasks", ()) or ()), **verified_raw)
    candidates_raw = dict(raw.pop("candidates", {}) or {})
    weights = candidates_raw.pop("blend_weights", ModelCandidates.blend_weights)
    model_candidates = ModelCandidates(blend_weights=tuple(float(w) for w in weights), **candidates_raw)
    baseline_raw = raw.pop("baselines", {}) or {}
    baselines = BaselineColumns(
        traditional_three={
            str(dimension): tuple(candidates_of_dimension)
            for dimension, candidates_of_dimension in (baseline_raw.get("traditional_three") or {}).items()
        },
        proxy_means_test=tuple(baseline_raw.get("proxy_means_test") or ()),
    )
    return TrainingSettings(
        promotion=promotion,
        complexity_candidates=candidates,
        tuning=tuning,
        baselines=baselines,
        verified_calibration=verified,
        candidates=model_candidates,
        comparison=comparison,
        **raw,
    )
