"""Shape-versus-label association, as in the MESA paper's Table 5: logistic regression on the first atlas
mode scores, 10-fold stratified cross-validated AUC with a 95 % bootstrap confidence interval.

A binary label gives one AUC; a categorical label (more than two values) gives one AUC per class, that
class against the rest, each from its own binary logistic regression (as MESA fitted one model per risk
factor). The number of mode scores is 20 (as in MESA), or one per 10 cases when there are fewer than 200
(the usual ten events per predictor; with 20 predictors and a few dozen cases the regression overfits and
the cross-validated AUC falls to chance), unless asked for explicitly. The AUC is computed on the pooled out-of-fold predictions, so every case is scored by a model
that did not see it; the interval resamples those predictions (2,000 stratified bootstrap resamples,
percentile interval).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from CardiacAtlasLib.atlas_io import read_scores
from CardiacMTLLib.atomic import starts_with
from CardiacMTLLib.errors import CardiacInputError

ASSOCIATION_COLUMNS = ["column", "class", "n_positive", "n_negative", "auc", "ci95_low", "ci95_high"]

DEFAULT_MODES = 20
CASES_PER_MODE = 10
DEFAULT_FOLDS = 10


@dataclass
class ClassAssociation:
    """AUC of one class against the rest (``label`` is the positive class)."""

    label: str
    n_positive: int
    n_negative: int
    auc: float
    ci_low: float
    ci_high: float


@dataclass
class Association:
    """Result of :func:`associate`: one :class:`ClassAssociation` per class (one for a binary label)."""

    column: str
    n_cases: int
    n_modes: int
    n_folds: int
    classes: list[ClassAssociation]
    n_unlabelled: int = 0


def read_labels(path: str | Path, column: str) -> dict[str, str]:
    """``case_id -> label`` from a CSV with a ``case_id`` column; empty labels are left out."""
    path = Path(path)
    if not path.is_file():
        raise CardiacInputError(f"{path}: labels file not found")
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        fields = reader.fieldnames or []
        if "case_id" not in fields or column not in fields:
            raise CardiacInputError(f"{path}: expected columns 'case_id' and {column!r}, found {fields}")
        labels = {}
        for row in reader:
            value = (row[column] or "").strip()
            if value:
                labels[row["case_id"].strip()] = value
    return labels


def auc_bootstrap_ci(
    y: np.ndarray, p: np.ndarray, n_resamples: int = 2000, seed: int = 0
) -> tuple[float, float]:
    """95 % percentile interval of the AUC of predictions ``p`` for binary ``y``, stratified bootstrap.

    Positives and negatives are resampled separately (so every resample has both), and each resample's
    AUC is the Mann-Whitney statistic computed from ranks (ties count one half).
    """
    from scipy.stats import rankdata

    rng = np.random.default_rng(seed)
    positives, negatives = p[y == 1], p[y == 0]
    n1, n0 = len(positives), len(negatives)
    sample = np.hstack(
        [positives[rng.integers(0, n1, (n_resamples, n1))], negatives[rng.integers(0, n0, (n_resamples, n0))]]
    )
    ranks = rankdata(sample, axis=1)
    aucs = (ranks[:, :n1].sum(axis=1) - n1 * (n1 + 1) / 2) / (n1 * n0)
    low, high = np.quantile(aucs, [0.025, 0.975])
    return float(low), float(high)


def associate_scores(
    scores: np.ndarray,
    labels: list[str],
    column: str = "label",
    n_modes: int | None = None,
    n_folds: int = DEFAULT_FOLDS,
    seed: int = 0,
) -> Association:
    """Cross-validated AUC of logistic regression on ``scores[:, :n_modes]`` (mm) for ``labels``.

    ``n_modes=None``: ``min(20, n_cases // 10)``, at least 1 (module docstring); never more than the
    atlas has.
    Scores are standardised inside each training fold; the folds are stratified, and their number is
    lowered to the size of the smallest class when that is below ``n_folds``.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    labels = np.asarray(labels, dtype=str)
    values = sorted(set(labels))
    if len(values) < 2:
        raise CardiacInputError(
            f"column {column!r} needs at least two different labels, found {[str(v) for v in values]}"
        )
    if n_modes is None:
        n_modes = max(1, min(DEFAULT_MODES, len(labels) // CASES_PER_MODE))
    k = int(min(n_modes, scores.shape[1]))
    x = np.asarray(scores, dtype=float)[:, :k]
    positives = values[1:] if len(values) == 2 else values
    classes = []
    folds_used = n_folds
    for positive in positives:
        y = (labels == positive).astype(int)
        smallest = int(min(y.sum(), len(y) - y.sum()))
        if smallest < 2:
            raise CardiacInputError(
                f"column {column!r}: class {str(positive)!r} against the rest has only {smallest} case(s) on one "
                "side; cross-validation needs at least 2"
            )
        folds = min(n_folds, smallest)
        folds_used = min(folds_used, folds)
        model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
        splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
        p = cross_val_predict(model, x, y, cv=splitter, method="predict_proba")[:, 1]
        low, high = auc_bootstrap_ci(y, p, seed=seed)
        classes.append(
            ClassAssociation(
                positive, int(y.sum()), int(len(y) - y.sum()), float(roc_auc_score(y, p)), low, high
            )
        )
    return Association(column, len(labels), k, folds_used, classes)


def associate(
    atlas_dir: str | Path,
    labels_csv: str | Path,
    column: str,
    n_modes: int | None = None,
    n_folds: int = DEFAULT_FOLDS,
    seed: int = 0,
) -> Association:
    """The ``associate`` action: the atlas' ``scores.csv`` joined with ``labels_csv`` on ``case_id``."""
    case_ids, scores = read_scores(Path(atlas_dir) / "scores.csv")
    labels = read_labels(labels_csv, column)
    keep = [i for i, case in enumerate(case_ids) if case in labels]
    if len(keep) < 4:
        raise CardiacInputError(
            f"{labels_csv}: only {len(keep)} of the atlas' {len(case_ids)} case ids have a {column!r} label; "
            f"atlas case ids look like {case_ids[:3]}"
        )
    result = associate_scores(
        scores[keep], [labels[case_ids[i]] for i in keep], column, n_modes=n_modes, n_folds=n_folds, seed=seed
    )
    result.n_unlabelled = len(case_ids) - len(keep)
    return result


def is_association_csv(path: Path) -> bool:
    """``path`` is a table :func:`association_csv` wrote (its header), the only file ``associate`` replaces."""
    return starts_with(",".join(ASSOCIATION_COLUMNS))(path)


def association_csv(result: Association) -> str:
    """The AUCs of :func:`associate` as CSV text: ``column, class, n_positive, n_negative, auc, ci95_low,
    ci95_high`` (4 decimals), one row per class."""
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(ASSOCIATION_COLUMNS)
    for c in result.classes:
        writer.writerow(
            [result.column, c.label, c.n_positive, c.n_negative, f"{c.auc:.4f}", f"{c.ci_low:.4f}",
             f"{c.ci_high:.4f}"]
        )  # fmt: skip
    return text.getvalue()
