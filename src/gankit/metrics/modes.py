"""Modes covered: how many of the data's classes a generator's samples fall into, by gankit's evaluator, and the KL
divergence from the samples' class histogram to the uniform one (Metz et al. 2017; PacGAN's protocol on Stacked
MNIST: 1,000 modes, 26,000 samples). A generator that covers every class evenly scores K modes and a KL of 0."""

from __future__ import annotations

from gankit.metrics.features import FeatureSet
from gankit.metrics.registry import register_metric


@register_metric(
    "modes",
    keys=("modes", "modes_kl"),
    panel="Modes covered",
    plotted=("modes",),
    needs_evaluator=True,
    by_default=False,
    samples_only=True,
)
def modes(real: FeatureSet, generated: FeatureSet) -> dict[str, object]:
    classes = real.probs.shape[1]
    counts = generated.probs.argmax(1).bincount(minlength=classes).double()
    share = counts[counts > 0] / counts.sum()
    return {"modes": int((counts > 0).sum()), "modes_kl": float((share * (share * classes).log()).sum())}
