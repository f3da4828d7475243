import pytest

from models.spec import LightGBMSpec
from training.settings import PromotionRule, TrainingSettings, load_training_settings


def test_default_settings_load_with_candidates():
    settings = load_training_settings()
    specs = settings.candidate_specs(LightGBMSpec())
    assert specs[0] == LightGBMSpec()
    assert len(specs) == len(settings.complexity_candidates) >= 1


def test_unknown_candidate_key_raises():
    settings = TrainingSettings(complexity_candidates=({"leaves": 3},))
    with pytest.raises(TypeError, match="leaves"):
        settings.candidate_specs(LightGBMSpec())


def test_promotion_rule_needs_a_strict_win_by_the_margin():
    auc = PromotionRule(metric="roc_auc", higher_is_better=True, min_improvement=0.01)
    assert auc.challenger_wins(0.82, 0.80)
    assert not auc.challenger_wins(0.805, 0.80)
    brier = PromotionRule(metric="brier", higher_is_better=False, min_improvement=0.0)
    assert brier.challenger_wins(0.09, 0.10)
    assert not brier.challenger_wins(0.10, 0.10)
