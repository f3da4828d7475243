import numpy as np
import pytest

from training.splits import grouped_kfold, round_to_round_splits


def test_grouped_kfold_keeps_households_apart_and_covers_every_row():
    rng = np.random.default_rng(0)
    groups = np.repeat([f"h{i}" for i in range(60)], 3)
    y = np.repeat(rng.binomial(1, 0.3, size=60), 3).astype(float)
    folds = grouped_kfold(groups, y, n_splits=5, seed=0)
    assert len(folds) == 5
    tested = np.concatenate([test for _, test in folds])
    assert sorted(tested.tolist()) == list(range(len(y)))
    for train, test in folds:
        assert not set(groups[train]) & set(groups[test])
        assert 0 < y[test].mean() < 1  # stratified: both classes in each test fold


def test_grouped_kfold_is_seeded():
    groups = np.arange(40)
    y = (np.arange(40) % 4 == 0).astype(float)
    first = grouped_kfold(groups, y, 4, seed=1)
    second = grouped_kfold(groups, y, 4, seed=1)
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(first, second, strict=True))


def test_grouped_kfold_single_class_and_bad_n_splits():
    assert len(grouped_kfold(np.arange(10), np.zeros(10), 2, seed=0)) == 2
    with pytest.raises(ValueError, match="n_splits"):
        grouped_kfold(np.arange(3), np.array([0.0, 1.0, 0.0]), 4, seed=0)


def test_round_to_round_splits_never_train_on_the_future():
    splits = round_to_round_splits([2, 0, 1, 1, 3])
    assert splits == [((0,), 1), ((0, 1), 2), ((0, 1, 2), 3)]
    assert round_to_round_splits([4, 4]) == []
