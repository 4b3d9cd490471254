"""gankit: train, watch, evaluate and use generative adversarial networks."""

__version__ = "0.1.0"
