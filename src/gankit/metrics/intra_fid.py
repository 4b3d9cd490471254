"""Intra-class FID (Miyato & Koyama 2018): FID between the samples asked for class k and the real test
images of class k, per class and as the mean over classes. A conditional G that ignores its labels
has a fine FID and a poor intra-class FID.
"""

from __future__ import annotations

from gankit.errors import GankitError
from gankit.metrics.features import FeatureSet
from gankit.metrics.fid import frechet_distance, gaussian
from gankit.metrics.registry import register_metric

MIN_PER_CLASS = 2  # a covariance needs two images


@register_metric("intra_fid", keys=("intra_fid",), panel="Intra-class FID", conditional=True)
def intra_fid(real: FeatureSet, generated: FeatureSet) -> dict[str, object]:
    """The mean is over the classes with at least two images on each side (None in the list marks the others)."""
    per_class: list[float | None] = []
    real_labels, fake_labels = real.known_labels(), generated.known_labels()
    for k in range(int(max(real_labels.max(), fake_labels.max())) + 1):  # the data's classes, whatever the features
        real_k, fake_k = real.features[real_labels == k], generated.features[fake_labels == k]
        fits = len(real_k) >= MIN_PER_CLASS and len(fake_k) >= MIN_PER_CLASS
        per_class.append(frechet_distance(*gaussian(real_k), *gaussian(fake_k)) if fits else None)
    scored = [f for f in per_class if f is not None]
    if not scored:
        raise GankitError(
            f"intra-class FID needs at least {MIN_PER_CLASS} images of a class on each side; score more samples",
            option="n",
        )
    return {"intra_fid": sum(scored) / len(scored), "intra_fid_per_class": per_class}
