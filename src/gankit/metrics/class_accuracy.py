"""Class accuracy of a conditional generator: the share of its samples that gankit's evaluator assigns
to the class they were asked for, per class and as the mean over classes.

Its floor is the evaluator's own accuracy on real images of known class.
"""

from __future__ import annotations

from gankit.metrics.features import FeatureSet
from gankit.metrics.registry import register_metric


@register_metric("class_acc", keys=("class_accuracy",), panel="Class accuracy", conditional=True, needs_evaluator=True)
def class_accuracy(real: FeatureSet, generated: FeatureSet) -> dict[str, object]:
    classes = real.probs.shape[1]  # the evaluator's classes are the data's
    labels = generated.known_labels()
    hit = (generated.probs.argmax(1) == labels).double()
    per_class = [
        float(hit[labels == k].mean()) if bool((labels == k).any()) else None for k in range(classes)
    ]  # None: no sample asked for the class
    asked = [a for a in per_class if a is not None]
    return {"class_accuracy": sum(asked) / len(asked), "class_accuracy_per_class": per_class}
