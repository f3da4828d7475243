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
    """Challenger wins when its `metric` beats the champion's by more than `min_improvement`."""

    metric: str = "roc_auc"
    higher_is_better: bool = True
    min_improvement: float = 0.0

    def challenger_wins(self, challenger: float, champion: float) -> bool:
        gain = challenger - champion if self.higher_is_better else champion - challenger
        return bool(gain > self.min_improvement)


@dataclass(frozen=True)
class TrainingSettings:
    cv_folds: int = 5
    shap_summary_rows: int = 2000
    promotion: PromotionRule = PromotionRule()
    complexity_candidates: tuple[dict[str, Any], ...] = field(default_factory=lambda: ({},))

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
    candidates = tuple(dict(entry or {}) for entry in raw.pop("complexity_candidates", [{}]))
    return TrainingSettings(promotion=promotion, complexity_candidates=candidates, **raw)
