"""The fitted feature ensemble as plain arrays, kept in the user's cache folder and evaluated with numpy.

Fitting the ensemble at first use costs the scikit-learn import and the fit, most of a second of every
analysis. What the fit produces is a few arrays: the nodes of the random forest's and the extra trees'
trees, the scaler's means and scales and the logistic regression's coefficients. They are written once as
JSON (no pickle; Python writes floats exactly) under a name that hashes everything the fit depends on:
the feature table, the ensemble's recipe, the seed, the feature names and the scikit-learn and numpy
versions, so that any change fits again. :class:`FittedEnsemble` repeats scikit-learn's arithmetic step for
step (float32 features at the tree nodes, each tree's leaf fractions summed in tree order and divided by
the number of trees, the scaler, the softmax, the plain mean of the three), which the tests check gives
the same probabilities as the scikit-learn ensemble.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
from importlib import metadata
from pathlib import Path

import numpy as np

from CardiacMTLLib.atomic import write_json_atomic

FORMAT = 1


def cache_folder() -> Path:
    """``$CARDIACMTL_CACHE`` or ``$XDG_CACHE_HOME/cardiacmtl`` (``~/.cache/cardiacmtl``) / ``diagnosis``."""
    if os.environ.get("CARDIACMTL_CACHE"):
        return Path(os.environ["CARDIACMTL_CACHE"]) / "diagnosis"
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "cardiacmtl" / "diagnosis"


def fit_key(table: Path, recipe, seed: int, names: tuple[str, ...]) -> str:
    """A hash of everything the fitted ensemble depends on (``recipe`` is the function that builds it)."""
    digest = hashlib.sha256()
    for part in (
        Path(table).read_bytes(),
        inspect.getsource(recipe).encode(),
        repr((FORMAT, seed, names, metadata.version("scikit-learn"), np.__version__)).encode(),
    ):
        digest.update(hashlib.sha256(part).digest())
    return digest.hexdigest()[:32]


def _trees(forest) -> list[dict]:
    trees = []
    for estimator in forest.estimators_:
        tree = estimator.tree_
        value = tree.value[:, 0, : estimator.n_classes_]
        trees.append(
            {
                "left": tree.children_left.tolist(),
                "right": tree.children_right.tolist(),
                "feature": tree.feature.tolist(),
                "threshold": tree.threshold.tolist(),
                "value": value.tolist(),
            }
        )
    return trees


def export_ensemble(ensemble) -> dict:
    """The arrays of a fitted ``build_ensemble`` (soft vote of a random forest, extra trees and a scaled
    logistic regression) as a JSON-ready document."""
    forest, extra, pipeline = ensemble.estimators_
    scaler, regression = pipeline[0], pipeline[-1]
    return {
        "format": FORMAT,
        "classes": [str(c) for c in ensemble.classes_],
        "forests": [_trees(forest), _trees(extra)],
        "mean": scaler.mean_.tolist(),
        "scale": scaler.scale_.tolist(),
        "coef": regression.coef_.tolist(),
        # the memory order of the coefficients picks the BLAS routine of the product, and its last bit
        "coef_fortran_order": bool(
            regression.coef_.flags.f_contiguous and not regression.coef_.flags.c_contiguous
        ),
        "intercept": regression.intercept_.tolist(),
    }


class FittedEnsemble:
    """``predict_proba`` and ``classes_`` of a fitted ensemble from :func:`export_ensemble`'s document."""

    def __init__(self, document: dict):
        if document.get("format") != FORMAT:
            raise ValueError(f"fitted ensemble format {document.get('format')!r}, expected {FORMAT}")
        self.classes_ = np.array(document["classes"], dtype=object)
        self._forests = [
            [
                (
                    np.array(t["left"], dtype=np.intp),
                    np.array(t["right"], dtype=np.intp),
                    np.array(t["feature"], dtype=np.intp),
                    np.array(t["threshold"], dtype=np.float64),
                    np.array(t["value"], dtype=np.float64),
                )
                for t in trees
            ]
            for trees in document["forests"]
        ]
        self._mean = np.array(document["mean"], dtype=np.float64)
        self._scale = np.array(document["scale"], dtype=np.float64)
        self._coef = np.array(
            document["coef"], dtype=np.float64, order="F" if document["coef_fortran_order"] else "C"
        )
        self._intercept = np.array(document["intercept"], dtype=np.float64)

    def _forest_proba(self, trees, X: np.ndarray) -> np.ndarray:
        x32 = X.astype(np.float32).astype(np.float64)  # the trees compare float32 features
        rows = np.arange(X.shape[0])
        total = np.zeros((X.shape[0], self.classes_.size), dtype=np.float64)
        for left, right, feature, threshold, value in trees:
            node = np.zeros(X.shape[0], dtype=np.intp)
            inner = left[node] != -1
            while inner.any():
                go_left = x32[rows, feature[node]] <= threshold[node]
                node = np.where(inner, np.where(go_left, left[node], right[node]), node)
                inner = left[node] != -1
            total += value[node]
        total /= len(trees)
        return total

    def _regression_proba(self, X: np.ndarray) -> np.ndarray:
        scaled = X.copy()
        scaled -= self._mean
        scaled /= self._scale
        scores = scaled @ self._coef.T + self._intercept
        scores -= np.reshape(np.max(scores, axis=1), (-1, 1))
        np.exp(scores, out=scores)
        scores /= np.reshape(np.sum(scores, axis=1), (-1, 1))
        return scores

    def predict_proba(self, X) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        probas = [self._forest_proba(trees, X) for trees in self._forests] + [self._regression_proba(X)]
        return np.average(np.asarray(probas), axis=0, weights=None)


def load_fitted(key: str) -> FittedEnsemble | None:
    """The cached ensemble of ``key``, or ``None`` when there is none (or it cannot be read)."""
    path = cache_folder() / f"ensemble-{key}.json"
    try:
        return FittedEnsemble(json.loads(path.read_text()))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def save_fitted(key: str, ensemble) -> None:
    """Keep a fitted ensemble for the next analyses; a cache that cannot be written is skipped."""
    try:
        write_json_atomic(export_ensemble(ensemble), cache_folder() / f"ensemble-{key}.json", indent=None)
    except OSError:
        pass
