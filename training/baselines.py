"""Fitted baselines of the poverty (identification) task, each a small regression fitted on the
training fold and scored on the evaluation fold.

- `traditional_three`: the traditional identification on three indicators — income, labour and
  livestock/assets — or the closest proxies the survey has (`training/settings.yaml`,
  `baselines.traditional_three`: the first present candidate per dimension, never the same column twice).
  For the simulated county: per-capita net income, labour-capable members, livestock per person. For a
  survey without incomes (Costa Rica): rent paid (else the durable-asset count) for income/wealth,
  labour-capable or working-age members for labour, durable assets per person for assets.
- `proxy_means_test`: the standard PMT variables present (head's education, household size and
  composition, housing, crowding, water/toilet/electricity, fuel, assets, urban/rural).
- `alkire_foster`: the weighted deprivation share over the non-income guarantees (policy weights,
  renormalised) and the policy cutoff indicator (share >= k).

Each is a median-imputed, standardised logistic regression for poor-vs-not (a probability, unweighted so
it stays calibrated) and, where levels exist, a multinomial logistic regression over the levels with
balanced class weights (weights from the training fold's class counts) for the level prediction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from features.policy import Policy
from training.settings import BaselineColumns

NON_INCOME_GUARANTEES = ("compulsory_education", "basic_medical", "safe_housing", "safe_water")
AF_SCORE, AF_POOR = "af_non_income_score", "af_poor_at_cutoff"
BASELINE_NAMES = ("traditional_three", "proxy_means_test", "alkire_foster")


def non_income_deprivation_score(features: pd.DataFrame, policy: Policy) -> np.ndarray:
    """Weighted share of failed non-income guarantees (weights renormalised to sum to 1; NaN -> 0)."""
    weights = np.array([policy.deprivation_weights[name] for name in NON_INCOME_GUARANTEES])
    columns = [f"deprived_{name}" for name in NON_INCOME_GUARANTEES]
    deprived = np.nan_to_num(features[columns].to_numpy(dtype=np.float64), nan=0.0)
    return deprived @ (weights / weights.sum())


def _present(frame: pd.DataFrame, column: str) -> bool:
    return column in frame.columns and bool(frame[column].notna().any()) and frame[column].nunique() > 1


def baseline_frame(features: pd.DataFrame, policy: Policy, extra: Mapping[str, np.ndarray]) -> pd.DataFrame:
    """The indicators plus the Alkire-Foster columns and any extra household columns (e.g. `rural`)."""
    frame = features.copy()
    score = non_income_deprivation_score(features, policy)
    frame[AF_SCORE] = score
    frame[AF_POOR] = (score >= policy.deprivation_cutoff - 1e-12).astype(np.float64)
    for name, values in extra.items():
        frame[name] = values
    return frame


def baseline_columns(frame: pd.DataFrame, settings: BaselineColumns) -> dict[str, list[str]]:
    """Columns of each baseline present in `frame` (see the module docstring)."""
    traditional: list[str] = []
    for candidates in settings.traditional_three.values():
        chosen = next((c for c in candidates if _present(frame, c) and c not in traditional), None)
        if chosen is not None:
            traditional.append(chosen)
    pmt = [column for column in dict.fromkeys(settings.proxy_means_test) if _present(frame, column)]
    columns = {
        "traditional_three": traditional,
        "proxy_means_test": pmt,
        "alkire_foster": [AF_SCORE, AF_POOR],
    }
    empty = [name for name, chosen in columns.items() if not chosen]
    if empty:
        raise ValueError(f"baselines {empty} have none of their columns in this survey")
    return columns


def _logistic(class_weight: str | None) -> Pipeline:
    return make_pipeline(
        SimpleImputer(strategy="median", keep_empty_features=True),
        StandardScaler(),
        LogisticRegression(C=1.0, max_iter=2000, class_weight=class_weight),
    )


def fit_predict_baseline(
    frame: pd.DataFrame,
    columns: Sequence[str],
    y: np.ndarray,
    levels: np.ndarray | None,
    train: np.ndarray,
    test: np.ndarray,
) -> tuple[np.ndarray, np.ndarray | None]:
    """P(poor) and (where levels exist) the predicted level of the `test` rows, fitted on `train` rows."""
    X = frame[list(columns)].to_numpy(dtype=np.float64)
    binary = _logistic(None).fit(X[train], y[train])
    p_poor = binary.predict_proba(X[test])[:, list(binary.classes_).index(1.0)]
    if levels is None:
        return p_poor, None
    multinomial = _logistic("balanced").fit(X[train], levels[train])
    return p_poor, np.asarray(multinomial.predict(X[test]))
