"""The steps' stats summed on the device over an epoch, read once at its end."""

from __future__ import annotations

import torch

from gankit.training.distributed import World, all_reduce_mean


class StatSums:
    """The steps' stats summed on the device, one sum per set of names: with train.d_steps, G's terms come only with
    G's updates, so each stat's mean is over the steps that reported it. One stack and one add a step, no host sync."""

    def __init__(self) -> None:
        self.sums: dict[tuple[str, ...], torch.Tensor] = {}
        self.counts: dict[tuple[str, ...], int] = {}

    def add(self, stats: dict[str, torch.Tensor]) -> torch.Tensor:
        """Adds one step's stats; returns them stacked."""
        names, values = tuple(stats), torch.stack(list(stats.values()))
        if names in self.sums:
            self.sums[names] += values
            self.counts[names] += 1
        else:
            self.sums[names], self.counts[names] = values.clone(), 1
        return values

    def state(self) -> list[tuple[tuple[str, ...], torch.Tensor, int]]:
        """The sums so far, on the CPU, as a checkpoint keeps them (before any all-reduce: this rank's own)."""
        return [(names, values.detach().cpu().clone(), self.counts[names]) for names, values in self.sums.items()]

    @classmethod
    def from_state(cls, saved: list[tuple[tuple[str, ...], torch.Tensor, int]], device: torch.device) -> StatSums:
        sums = cls()
        for names, values, count in saved:
            sums.sums[tuple(names)], sums.counts[tuple(names)] = values.to(device), int(count)
        return sums

    def all_reduce(self, world: World) -> None:
        """The sums averaged over the ranks, which take the same steps, so their sets of names match."""
        for values in self.sums.values():
            all_reduce_mean(values, world)

    def means(self) -> dict[str, float]:
        """Each stat's mean over the steps that reported it, in the order of the widest set (G's steps)."""
        totals: dict[str, float] = {}
        counts: dict[str, int] = {}
        for names in sorted(self.sums, key=len, reverse=True):
            for name, value in zip(names, self.sums[names].tolist()):
                totals[name] = totals.get(name, 0.0) + value
                counts[name] = counts.get(name, 0) + self.counts[names]
        return {name: total / counts[name] for name, total in totals.items()}
