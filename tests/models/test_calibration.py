import numpy as np
import pytest

from models.calibration import IsotonicCalibrator, PlattCalibrator, new_calibrator


def _overconfident(n: int = 4000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """True probability sigmoid(margin / 2): a model twice as confident as it should be."""
    rng = np.random.default_rng(seed)
    margin = rng.normal(scale=3.0, size=n)
    y = (rng.random(n) < 1 / (1 + np.exp(-margin / 2))).astype(float)
    return margin, y


def test_platt_recovers_slope_of_overconfident_margin():
    margin, y = _overconfident()
    calibrator = PlattCalibrator().fit(margin, y)
    assert calibrator.slope == pytest.approx(0.5, abs=0.08)
    assert calibrator.intercept == pytest.approx(0.0, abs=0.1)


def test_calibrators_improve_brier_and_stay_monotone():
    margin, y = _overconfident()
    raw = 1 / (1 + np.exp(-margin))
    grid = np.linspace(-6, 6, 50)
    for calibrator in (PlattCalibrator().fit(margin, y), IsotonicCalibrator().fit(margin, y)):
        calibrated = calibrator.transform(margin)
        assert np.mean((calibrated - y) ** 2) < np.mean((raw - y) ** 2)
        on_grid = calibrator.transform(grid)
        assert np.all(np.diff(on_grid) >= 0)
        assert on_grid.min() >= 0 and on_grid.max() <= 1


def test_isotonic_before_fit_raises():
    with pytest.raises(RuntimeError, match="before fit"):
        IsotonicCalibrator().transform(np.zeros(3))


def test_calibrator_rejects_one_class_and_nan():
    with pytest.raises(ValueError, match="both classes"):
        PlattCalibrator().fit(np.array([0.1, 0.2, 0.3]), np.array([1.0, 1.0, 1.0]))
    with pytest.raises(ValueError, match="NaN"):
        IsotonicCalibrator().fit(np.array([0.1, np.nan, 0.3]), np.array([0.0, 1.0, 1.0]))


def test_new_calibrator_by_name():
    assert isinstance(new_calibrator("platt"), PlattCalibrator)
    assert isinstance(new_calibrator("isotonic"), IsotonicCalibrator)
    with pytest.raises(ValueError, match="unknown calibrator"):
        new_calibrator("beta")


def test_platt_never_reverses_the_ranking():
    margin, y = _overconfident()
    calibrator = PlattCalibrator().fit(-margin, y)  # margins anti-correlated with the outcome
    assert calibrator.slope == 0.0
    assert np.allclose(calibrator.transform(np.array([-5.0, 5.0])), y.mean(), atol=1e-3)
