"""Training: the step, the epoch loop with its callbacks, checkpoint state, and `train` that ties them together."""
