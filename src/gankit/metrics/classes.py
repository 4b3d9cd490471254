"""Class coverage: which classes the evaluator sees in the samples, against the real class mix.

A generator that dropped a digit covers 9 classes, and its KL divergence from the real class
distribution grows; both show mode collapse that FID can blur.
"""

from __future__ import annotations

import torch

from gankit.metrics.features import FeatureSet
from gankit.metrics.registry import register_metric

MIN_SHARE = 0.1  # a class counts as covered when it gets at least this share of its fair 1/K


@register_metric(
    "coverage",
    keys=("classes_covered", "class_kl"),
    panel="Classes covered",
    plotted=("classes_covered",),
    needs_probabilities=True,
)
def class_coverage(real: FeatureSet, generated: FeatureSet) -> dict[str, object]:
    classes = real.probs.shape[1]
    real_labels = real.labels if real.labels is not None else real.probs.argmax(1)
    real_share = torch.bincount(real_labels, minlength=classes).double() / len(real_labels)
    counts = torch.bincount(generated.probs.argmax(1), minlength=classes)
    share = counts.double() / counts.sum()
    covered = int((share >= MIN_SHARE / classes).sum())
    kl = (share * (share.clamp_min(1e-12).log() - real_share.clamp_min(1e-12).log())).sum()
    return {"classes_covered": covered, "class_kl": float(kl), "class_histogram": counts.tolist()}
