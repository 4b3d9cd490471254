"""gankit: train, watch, evaluate and use generative adversarial networks.

import gankit
config = gankit.load_preset("report-gan-mnist")
run = gankit.train(config, "runs/demo", data_dir="../shared/data/mnist")
images = run.sample(64, seed=0)
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = [
    "Config",
    "GankitError",
    "Hooks",
    "Run",
    "Term",
    "apply_overrides",
    "load_preset",
    "load_run",
    "sample_images",
    "train",
]

# imported on first use, so `import gankit` (and the CLI's start) stays light
_LAZY = {
    "Config": "gankit.config",
    "apply_overrides": "gankit.config",
    "load_preset": "gankit.config",
    "GankitError": "gankit.errors",
    "Run": "gankit.run",
    "load_run": "gankit.run",
    "sample_images": "gankit.sampling",
    "train": "gankit.training.trainer",
    "Hooks": "gankit.training.hooks",
    "Term": "gankit.terms",
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'gankit' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(_LAZY[name]), name)
