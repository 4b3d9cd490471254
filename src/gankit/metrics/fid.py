"""Fréchet Inception Distance: ||mu_r - mu_g||² + Tr(S_r + S_g - 2 (S_r S_g)^½) between Gaussian fits."""

from __future__ import annotations

import warnings

import numpy as np
import scipy.linalg
import torch

from gankit.metrics.features import FeatureSet
from gankit.metrics.registry import register_metric


def gaussian(features: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    x = features.numpy()
    return x.mean(0), np.cov(x, rowvar=False)


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", scipy.linalg.LinAlgWarning)  # dead ReLU features make S singular; handled below
        covmean = scipy.linalg.sqrtm(sigma1 @ sigma2)
    if not np.isfinite(covmean).all():  # a singular product: nudge both covariances, as pytorch-fid does
        offset = np.eye(len(sigma1)) * 1e-6
        covmean = scipy.linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    covmean = covmean.real  # numerical noise can leave tiny imaginary parts
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean))


@register_metric("fid", keys=("fid",), panel="FID")
def fid(real: FeatureSet, generated: FeatureSet) -> dict[str, float]:
    return {"fid": frechet_distance(*gaussian(real.features), *gaussian(generated.features))}
