"""Metrics against known answers, on synthetic features where the truth is known."""

import math

import numpy as np
import pytest
import torch

from gankit.errors import GankitError
from gankit.metrics import compute, parse_metrics
from gankit.metrics.classes import class_coverage
from gankit.metrics.features import FeatureSet
from gankit.metrics.fid import fid, frechet_distance
from gankit.metrics.inception_score import inception_score
from gankit.metrics.kid import kid, mmd2_unbiased
from gankit.metrics.prdc import prdc


def _gaussian(n, mean, std, seed):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(n, len(mean), generator=gen, dtype=torch.float64) * torch.tensor(std) + torch.tensor(mean)


def _set(features, probs=None, labels=None):
    return FeatureSet(
        features, probs if probs is not None else torch.full((len(features), 2), 0.5, dtype=torch.float64), labels
    )


def test_frechet_distance_closed_form():
    # diagonal covariances: |mu1 - mu2|² + sum (sqrt(s1) - sqrt(s2))² = (1 + 4) + ((1 - 2)² + (2 - 3)²) = 7
    value = frechet_distance(np.zeros(2), np.diag([1.0, 4.0]), np.array([1.0, 2.0]), np.diag([4.0, 9.0]))
    assert value == pytest.approx(7.0, abs=1e-9)


def test_fid_of_identical_sets_is_zero():
    x = _gaussian(3000, [0.0] * 8, [1.0] * 8, 0)
    assert abs(fid(_set(x), _set(x.clone()))["fid"]) < 1e-6


def test_fid_of_two_gaussians_matches_the_closed_form():
    a = _gaussian(40000, [0.0, 0.0, 0.0], [1.0, 2.0, 1.0], 1)
    b = _gaussian(40000, [1.0, 0.0, -1.0], [2.0, 1.0, 1.0], 2)
    expected = (1 + 1) + ((1 - 2) ** 2 + (2 - 1) ** 2)  # = 4
    assert fid(_set(a), _set(b))["fid"] == pytest.approx(expected, rel=0.05)


def test_kid_near_zero_for_the_same_distribution_and_positive_otherwise():
    a, b = _gaussian(2000, [0.0] * 16, [1.0] * 16, 3), _gaussian(2000, [0.0] * 16, [1.0] * 16, 4)
    same = kid(_set(a), _set(b), subsets=50, subset_size=500)
    assert abs(same["kid_mean"]) < 3 * same["kid_std"] + 1e-3
    shifted = kid(_set(a), _set(b + 0.5), subsets=50, subset_size=500)
    assert shifted["kid_mean"] > 10 * same["kid_std"]
    identical = kid(_set(a), _set(a.clone()), subsets=20, subset_size=500)
    assert abs(identical["kid_mean"]) < 3 * identical["kid_std"] + 1e-3


def test_kid_of_sets_no_larger_than_a_subset_is_their_whole_sets_mmd_once():
    a, b = _gaussian(300, [0.0] * 8, [1.0] * 8, 5), _gaussian(300, [0.5] * 8, [1.0] * 8, 6)
    result = kid(_set(a), _set(b), subsets=100, subset_size=1000)
    assert result == {"kid_mean": pytest.approx(mmd2_unbiased(a, b), rel=1e-9), "kid_std": 0.0}
    larger = kid(_set(a), _set(torch.cat([b, b + 0.1])), subsets=10, subset_size=1000)  # G's 600 are subsampled
    assert larger["kid_std"] > 0


def test_inception_score_bounds():
    confident = torch.eye(10, dtype=torch.float64).repeat(100, 1)  # each class equally, each sure
    assert inception_score(None, _set(torch.zeros(1000, 1), confident))["is_mean"] == pytest.approx(10, rel=1e-6)
    collapsed = torch.eye(10, dtype=torch.float64)[[3] * 1000]
    assert inception_score(None, _set(torch.zeros(1000, 1), collapsed))["is_mean"] == pytest.approx(1, rel=1e-6)


def _clusters(classes, per_class, seed):
    """Points in 3-D blobs around 10 well separated centres, with one-hot class probabilities and labels."""
    gen = torch.Generator().manual_seed(seed)
    centres = torch.eye(10, 13, dtype=torch.float64) * 10
    labels = torch.tensor(classes).repeat_interleave(per_class)
    noise = torch.zeros(len(labels), 13, dtype=torch.float64)
    noise[:, 10:] = torch.randn(len(labels), 3, generator=gen, dtype=torch.float64)
    points = centres[labels] + noise
    return FeatureSet(points, torch.eye(10, dtype=torch.float64)[labels], labels)


def test_missing_classes_lose_coverage_and_recall_but_keep_precision():
    real = _clusters(range(10), 200, 0)
    full = compute(["pr", "coverage"], real, _clusters(range(10), 200, 1))
    dropped = compute(["pr", "coverage"], real, _clusters(range(8), 250, 2))  # two classes never generated
    assert full["precision"] > 0.9 and dropped["precision"] > 0.9
    assert full["recall"] > 0.9 and dropped["recall"] < 0.85
    # coverage of a perfect generator tends to 1 - 1/2^k = 0.875 for k = 3 (Naeem et al.); two of ten classes gone: x0.8
    assert full["coverage"] > 0.85 and dropped["coverage"] < 0.8
    assert full["classes_covered"] == 10 and dropped["classes_covered"] == 8
    assert dropped["class_histogram"][8:] == [0, 0]
    assert full["class_kl"] < 0.01 < math.log(10 / 8) - 0.01 < dropped["class_kl"]


def test_density_counts_real_balls():
    real = _clusters(range(10), 200, 0)
    assert prdc(real, real)["density"] == pytest.approx(1.0, abs=0.1)  # each point sits in about k balls


def test_class_coverage_uses_true_labels_of_the_real_side():
    real = _clusters(range(10), 100, 0)
    result = class_coverage(real, _clusters([0], 100, 1))
    assert result["classes_covered"] == 1 and result["class_kl"] == pytest.approx(math.log(10), rel=1e-6)


def test_metric_names_are_checked():
    assert parse_metrics("fid, kid") == ["fid", "kid"]
    known = "fid, kid, is, pr, coverage, class_acc, intra_fid, modes"
    with pytest.raises(GankitError, match=f"unknown metric 'fdi' \\(known: {known}\\)"):
        parse_metrics("fid,fdi")
