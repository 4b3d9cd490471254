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
    per_class = []
    for k in range(int(max(real.labels.max(), generated.labels.max())) + 1):  # the data's classes, whatever the features
        real_k, fake_k = real.features[real.labels == k], generated.features[generated.labels == k]
        if len(real_k) < MIN_PER_CLASS or len(fake_k) < MIN_PER_CLASS:
            raise GankitError(f"intra-class FID needs at least {MIN_PER_CLASS} images of each class on each side; "
                              f"class {k} has {len(real_k)} real and {len(fake_k)} generated (score more samples)")
        per_class.append(frechet_distance(*gaussian(real_k), *gaussian(fake_k)))
    return {"intra_fid": sum(per_class) / len(per_class), "intra_fid_per_class": per_class}
