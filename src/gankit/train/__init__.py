"""Training: the step (step.py), its state and checkpoints (state.py) and the epoch loop (loop.py)."""
