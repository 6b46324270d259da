"""The cached fitted ensemble: numpy evaluation equal to scikit-learn's, the cache read back, and a changed
input fitting again."""

from __future__ import annotations

import numpy as np
import pytest

from CardiacMTLLib.analysis.diagnosis.features import (
    DEFAULT_CLASSIFIER,
    FeatureClassifier,
    build_ensemble,
    feature_matrix,
    feature_names,
    read_feature_table,
)
from CardiacMTLLib.analysis.diagnosis.fitted import (
    FittedEnsemble,
    cache_folder,
    export_ensemble,
    fit_key,
)


@pytest.fixture()
def own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CARDIACMTL_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.mark.parametrize("feature_set,body_size", [("global", True), ("regional", False)])
def test_numpy_ensemble_gives_scikit_learns_probabilities_exactly(feature_set, body_size):
    _, classes, rows = read_feature_table(DEFAULT_CLASSIFIER / "features.csv")
    names = feature_names(feature_set, body_size)
    X = feature_matrix(rows, names)
    fitted = build_ensemble(0).fit(X, classes)
    mirror = FittedEnsemble(export_ensemble(fitted))
    rng = np.random.default_rng(5)
    # the training rows, rows moved by up to a tenth of each feature's spread, and rows far outside
    probes = np.vstack(
        [X, X + rng.normal(0, 0.1, X.shape) * X.std(axis=0), X[:10] * 3.0, rng.permutation(X)[:20] * 0.5]
    )
    assert list(mirror.classes_) == list(fitted.classes_)
    expected = fitted.predict_proba(probes)
    measured = mirror.predict_proba(probes)
    assert np.array_equal(expected, measured)
    # and one row at a time, as an analysis asks
    for row in probes[:5]:
        assert np.array_equal(fitted.predict_proba(row[None]), mirror.predict_proba(row[None]))


def test_classifier_reads_its_fit_back_from_the_cache(own_cache):
    features = read_feature_table(DEFAULT_CLASSIFIER / "features.csv")[2][3]  # a patient with every feature
    first = FeatureClassifier(None, "global").predict(features)
    cached = sorted(cache_folder().glob("ensemble-*.npz"))
    assert len(cached) == 1 and cache_folder().is_relative_to(own_cache)
    again = FeatureClassifier(None, "global")
    second = again.predict(features)
    assert second == first
    names = feature_names("global", True)
    assert isinstance(again._models[names], FittedEnsemble)  # read, not fitted


def test_a_changed_table_or_seed_gets_another_key(tmp_path):
    table = DEFAULT_CLASSIFIER / "features.csv"
    names = feature_names("global", True)
    key = fit_key(table, build_ensemble, 0, names)
    changed = tmp_path / "features.csv"
    changed.write_text(table.read_text() + "\n")
    assert fit_key(changed, build_ensemble, 0, names) != key
    assert fit_key(table, build_ensemble, 1, names) != key
    assert fit_key(table, build_ensemble, 0, feature_names("global", False)) != key
    assert fit_key(table, build_ensemble, 0, names) == key


def test_an_unreadable_cache_file_is_fitted_again(own_cache):
    features = read_feature_table(DEFAULT_CLASSIFIER / "features.csv")[2][3]
    first = FeatureClassifier(None, "global").predict(features)
    (cached,) = cache_folder().glob("ensemble-*.npz")
    cached.write_bytes(b"not a zip file")  # a disk that filled up, another program's file
    again = FeatureClassifier(None, "global")
    assert again.predict(features) == first
    assert not isinstance(again._models[feature_names("global", True)], FittedEnsemble)  # fitted anew


def test_writing_the_cache_removes_only_the_old_json_caches(own_cache):
    folder = cache_folder()
    folder.mkdir(parents=True)
    old = [folder / "ensemble-32adede5b1e3710db908d2b6e76f4fe8.json", folder / f"ensemble-{'0' * 32}.json"]
    for path in old:
        path.write_text("{}")
    # not the project's format-1 names, or not plain files: left alone
    kept = [folder / "ensemble-notes.json", folder / "ensemble-32adede5.json", folder / "mine.json"]
    for path in kept:
        path.write_text("mine")
    (folder / f"ensemble-{'1' * 32}.json").mkdir()
    (folder / f"ensemble-{'2' * 32}.json").symlink_to(folder / "mine.json")
    features = read_feature_table(DEFAULT_CLASSIFIER / "features.csv")[2][3]
    FeatureClassifier(None, "global").predict(features)  # fits and writes its .npz
    assert len(list(folder.glob("ensemble-*.npz"))) == 1
    assert not any(path.exists() for path in old)
    assert all(path.read_text() == "mine" for path in kept)
    assert (folder / f"ensemble-{'1' * 32}.json").is_dir()
    assert (folder / f"ensemble-{'2' * 32}.json").is_symlink()
