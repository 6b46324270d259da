"""The fitted feature ensemble as plain arrays, kept in the user's cache folder and evaluated with numpy.

Fitting the ensemble at first use costs the scikit-learn import and the fit, most of a second of every
analysis. What the fit produces is a few arrays: the nodes of the random forest's and the extra trees'
trees, the scaler's means and scales and the logistic regression's coefficients. They are written once as
a numpy ``.npz`` of plain arrays (no pickle; the floats' bits as they are; each forest's trees end to end,
with their node counts), read back in about 4 ms, under a name that hashes everything the fit depends on:
the feature table, the ensemble's recipe, the seed, the feature names and the scikit-learn and numpy
versions, so that any change fits again. :class:`FittedEnsemble` repeats scikit-learn's arithmetic step for
step (float32 features at the tree nodes, each tree's leaf fractions summed in tree order and divided by
the number of trees, the scaler, the softmax, the plain mean of the three), which the tests check gives
the same probabilities as the scikit-learn ensemble.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import io
import os
import re
import zipfile
from importlib import metadata
from pathlib import Path

import numpy as np

from CardiacMTLLib.atomic import write_bytes_atomic

FORMAT = 2
# the JSON caches of format 1, which no version reads any more (only this project names files so)
_FORMAT_1_NAME = re.compile(r"ensemble-[0-9a-f]{32}\.json")


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


def _forest(forest, prefix: str) -> dict[str, np.ndarray]:
    """The nodes of a fitted forest's trees, end to end, and each tree's node count."""
    trees = [(estimator.tree_, estimator.n_classes_) for estimator in forest.estimators_]
    return {
        f"{prefix}_nodes": np.array([tree.node_count for tree, _ in trees], dtype=np.int64),
        f"{prefix}_left": np.concatenate([tree.children_left for tree, _ in trees]).astype(np.int64),
        f"{prefix}_right": np.concatenate([tree.children_right for tree, _ in trees]).astype(np.int64),
        f"{prefix}_feature": np.concatenate([tree.feature for tree, _ in trees]).astype(np.int64),
        f"{prefix}_threshold": np.concatenate([tree.threshold for tree, _ in trees]).astype(np.float64),
        f"{prefix}_value": np.concatenate([tree.value[:, 0, :n] for tree, n in trees]).astype(np.float64),
    }


def export_ensemble(ensemble) -> dict[str, np.ndarray]:
    """The arrays of a fitted ``build_ensemble`` (soft vote of a random forest, extra trees and a scaled
    logistic regression), as :func:`save_fitted` writes them."""
    forest, extra, pipeline = ensemble.estimators_
    scaler, regression = pipeline[0], pipeline[-1]
    return {
        "format": np.array(FORMAT),
        "classes": np.array([str(c) for c in ensemble.classes_]),
        **_forest(forest, "forest0"),
        **_forest(extra, "forest1"),
        "mean": np.asarray(scaler.mean_, dtype=np.float64),
        "scale": np.asarray(scaler.scale_, dtype=np.float64),
        "coef": np.ascontiguousarray(regression.coef_, dtype=np.float64),
        # the memory order of the coefficients picks the BLAS routine of the product, and its last bit
        "coef_fortran_order": np.array(
            bool(regression.coef_.flags.f_contiguous and not regression.coef_.flags.c_contiguous)
        ),
        "intercept": np.asarray(regression.intercept_, dtype=np.float64),
    }


def _trees(arrays, prefix: str) -> list[tuple[np.ndarray, ...]]:
    """Each tree's (left, right, feature, threshold, value) of forest ``prefix`` in :func:`export_ensemble`'s
    arrays."""
    ends = np.cumsum(arrays[f"{prefix}_nodes"])[:-1]
    parts = [
        np.split(np.asarray(arrays[f"{prefix}_{name}"], dtype=dtype), ends)
        for name, dtype in (
            ("left", np.intp),
            ("right", np.intp),
            ("feature", np.intp),
            ("threshold", np.float64),
            ("value", np.float64),
        )
    ]
    return list(zip(*parts, strict=True))


class FittedEnsemble:
    """``predict_proba`` and ``classes_`` of a fitted ensemble from :func:`export_ensemble`'s arrays."""

    def __init__(self, arrays):
        if "format" not in arrays or int(arrays["format"]) != FORMAT:
            raise ValueError(f"fitted ensemble format {arrays.get('format')!r}, expected {FORMAT}")
        self.classes_ = np.array([str(c) for c in arrays["classes"]], dtype=object)
        self._forests = [_trees(arrays, "forest0"), _trees(arrays, "forest1")]
        self._mean = np.array(arrays["mean"], dtype=np.float64)
        self._scale = np.array(arrays["scale"], dtype=np.float64)
        self._coef = np.array(
            arrays["coef"], dtype=np.float64, order="F" if bool(arrays["coef_fortran_order"]) else "C"
        )
        self._intercept = np.array(arrays["intercept"], dtype=np.float64)

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
    path = cache_folder() / f"ensemble-{key}.npz"
    try:
        with np.load(path, allow_pickle=False) as arrays:
            return FittedEnsemble({name: arrays[name] for name in arrays.files})
    except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile):
        return None


def save_fitted(key: str, ensemble) -> None:
    """Keep a fitted ensemble for the next analyses; a cache that cannot be written is skipped."""
    buffer = io.BytesIO()
    np.savez(buffer, **export_ensemble(ensemble))
    try:
        write_bytes_atomic(buffer.getvalue(), cache_folder() / f"ensemble-{key}.npz")
    except OSError:
        return
    remove_format_1_caches()


def remove_format_1_caches() -> None:
    """Delete the format-1 caches (``ensemble-<32 hex digits>.json``) that earlier versions wrote in the
    cache folder; nothing else there is touched, and one that cannot be deleted is left."""
    for path in cache_folder().glob("ensemble-*.json"):
        if _FORMAT_1_NAME.fullmatch(path.name) and path.is_file() and not path.is_symlink():
            with contextlib.suppress(OSError):
                path.unlink()
