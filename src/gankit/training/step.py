"""One GAN training step: update D on real and generated images, then G through the updated D."""

from __future__ import annotations

import contextlib
import functools
import operator
from collections.abc import Callable, Iterator, Sequence

import torch
from torch import nn

from gankit.augment import NO_AUGMENTATION, Augmentation
from gankit.device import autocast
from gankit.losses import GANLoss
from gankit.models import Generator, has_batch_norm
from gankit.terms import Outputs, Seen, Term
from gankit.training.distributed import SINGLE, World

# a loss's reading of D's outputs on a real and a generated batch (`GANLoss.margins`)
Margins = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]
THRESHOLD_AT_ZERO: Margins = GANLoss().margins


class GANStep:
    """Callable on a batch of real images (already in G's value range) and their labels (an unconditional model
    ignores them); returns the step's named stats.

    D's loss is the sum of the `terms` for D, G's the sum of those for G (a loss, a penalty, a class loss:
    see `gankit.terms`). The stats are detached scalar tensors on the device, so the caller can sum them there
    and read them without a host sync every step; G's terms come only with G's updates. `after_step` hooks get
    the step after each G update, once both nets are updated (an EMA of G, say). A conditional G makes classes
    drawn from `class_weights` (the data's class frequencies) with torch's RNG on the device, which checkpoints
    save, so resume replays them; an unconditional G's are all 0 and draw nothing.
    """

    def __init__(
        self,
        G: Generator,
        D: nn.Module,
        opt_g: torch.optim.Optimizer,
        opt_d: torch.optim.Optimizer,
        terms: Sequence[Term],
        *,
        device: torch.device,
        precision: str = "fp32",
        margins: Margins = THRESHOLD_AT_ZERO,
        after_step: Sequence[Callable[[GANStep], None]] = (),
        augment: Augmentation = NO_AUGMENTATION,
        class_weights: torch.Tensor | None = None,
        fresh_g_noise: bool = False,
        world: World = SINGLE,
        G_update: nn.Module | None = None,
        D_update: nn.Module | None = None,
    ):
        self.G, self.D, self.opt_g, self.opt_d = G, D, opt_g, opt_d
        # the forwards whose backward updates a net; under torchrun its DistributedDataParallel wrapper (see
        # `distributed_nets`): D's is used in D's step only, so G's step, which goes through the bare D with D's
        # weights frozen, reduces none of D's gradients, and each update's backward all-reduces its own net's once
        self.G_update = G if G_update is None else G_update  # not `or`: a compiled module's truth is its len()
        self.D_update = D if D_update is None else D_update
        self.world = world
        self.d_terms = [t for t in terms if t.net == "D"]
        self.g_terms = [t for t in terms if t.net == "G"]
        self.term_weights: dict[str, float] = {}  # a term's weight for the next steps (a schedule's), 1 where unnamed
        self.margins = margins  # where D's outputs on both batches call them rightly (the loss's; D's accuracy, ADA)
        # each net's updates so far: lazy terms and each rank's own random stream go by them
        self.d_updates: int | None = None
        self.g_updates: int | None = None
        self.device, self.precision = device, precision
        self.after_step = list(after_step)
        self.stop_request: str | None = None  # a hook's request to end the run after this step
        self.augment = augment  # what D sees of every image, real or generated (told D's outputs on the real ones)
        self.class_weights = class_weights  # None: uniform
        self.fresh_g_noise = fresh_g_noise
        self.d_trainable = [p for p in D.parameters() if p.requires_grad]  # frozen by G's step, then restored
        # without batch norm, one D forward over real and fake together is the same function
        self.joint_d = not has_batch_norm(D)

    def __call__(self, real: torch.Tensor, labels: torch.Tensor, *, update_g: bool = True) -> dict[str, torch.Tensor]:
        """One D update and, with `update_g`, one G update (train.d_steps leaves G out of most steps; their
        stats have D's terms only)."""
        z, fake_labels = self._draw(real.shape[0])
        if update_g and self.fresh_g_noise:  # G learns from images D was not just trained on, as Keras's loop does
            g_z, g_labels = self._draw(real.shape[0])
        update = self._next_update("D")
        with self._own_randomness(update):
            with autocast(self.precision, self.device):
                # no graph through G where G's update will not reuse these images
                with torch.set_grad_enabled(update_g and not self.fresh_g_noise):
                    fake = self.G_update(z, fake_labels)
                real_out, fake_out = self.discriminate(real, labels, fake.detach(), fake_labels)
                with torch.no_grad():
                    real_margin, fake_margin = self.margins(real_out[0], fake_out[0])
                self.augment.observe(real_margin)
                d_seen = Seen(self._critic, real, labels, fake.detach(), fake_labels, real=real_out, fake=fake_out)
                d_terms = {term.name: self._weighted(term, update, d_seen) for term in self.d_terms}
            self._update(self.opt_d, _total(d_terms))
            g_terms: dict[str, torch.Tensor] = {}
            if update_g:
                if self.fresh_g_noise:
                    fake_labels = g_labels
                    with autocast(self.precision, self.device):
                        fake = self.G_update(g_z, g_labels)
                g_terms = self._update_g(real, labels, fake, fake_labels)
        if update_g:
            for hook in self.after_step:
                hook(self)
        return self._stats({**d_terms, **g_terms}, d_seen, real_margin, fake_margin)

    def _stats(
        self, terms: dict[str, torch.Tensor], seen: Seen, real_margin: torch.Tensor, fake_margin: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """The terms, detached, and D's accuracy on both batches (and on the classes, for an ACGAN D)."""
        with torch.no_grad():
            stats = {name: term.detach().float() for name, term in terms.items()}
            stats["d_acc_real"] = real_margin.gt(0).float().mean()
            stats["d_acc_fake"] = fake_margin.gt(0).float().mean()
            if seen.real_class is not None:
                stats["d_acc_class"] = seen.real_class.argmax(1).eq(seen.real_labels).float().mean()
            stats.update(self.augment.stats())
            return stats

    def _draw(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """This rank's noise and classes of a global batch of n * world.size: every rank draws the whole batch from
        the same RNG stream and keeps its share, so the shares together are what one process would draw."""
        total, share = n * self.world.size, slice(self.world.rank * n, (self.world.rank + 1) * n)
        z = self.G.sample_noise(total, device=self.device)
        return z[share], self.G.sample_labels(total, weights=self.class_weights, device=self.device)[share]

    def request_stop(self, reason: str) -> None:
        """End the run after this step (a hook's call): its epoch so far is recorded and checkpointed, and resuming
        goes on from this step exactly. Under torchrun every rank's hooks must ask at the same step."""
        self.stop_request = reason

    def take_stop_request(self) -> str | None:
        reason, self.stop_request = self.stop_request, None
        return reason

    def _weighted(self, term: Term, update: int, seen: Seen) -> torch.Tensor:
        weight = self.term_weights.get(term.name, 1.0)
        return term.value(update, seen) if weight == 1.0 else weight * term.value(update, seen)

    def recount(self) -> None:
        """Count the nets' updates again from their optimisers (restored from a checkpoint, say)."""
        self.d_updates = self.g_updates = None

    def _next_update(self, net: str) -> int:
        """The number of this update of `net` ("D" or "G"), from 0 over the whole run: its optimiser counts its steps,
        and checkpoints carry the count, so resume goes on counting."""
        attribute, optimiser = ("d_updates", self.opt_d) if net == "D" else ("g_updates", self.opt_g)
        done = getattr(self, attribute)
        if done is None:
            done = max((int(s["step"]) for s in optimiser.state.values() if "step" in s), default=0)
        setattr(self, attribute, done + 1)
        return done

    def _own_randomness(self, update: int) -> contextlib.AbstractContextManager:
        """Dropout masks and augmentations of this rank's images: with several ranks, drawn from a stream of this rank's
        own, else two ranks would give their images the same ones."""
        if self.world.size == 1:
            return contextlib.nullcontext()
        # keyed by the update and the rank, not drawn from the shared stream, which must stay as one process's
        # (the update counted from 1, the key every checkpoint's streams were drawn with, so resume keeps them)
        return _seeded_fork(hash((torch.initial_seed(), update + 1, self.world.rank)), self.device)

    def _update_g(
        self, real: torch.Tensor, labels: torch.Tensor, fake: torch.Tensor, fake_labels: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """G's update through D (D's weights frozen meanwhile); returns its named terms, detached."""
        update = self._next_update("G")
        for p in self.d_trainable:  # G's step goes through D, but D's weights need no gradient here
            p.requires_grad_(False)
        try:
            with autocast(self.precision, self.device):
                seen = Seen(self._critic, real, labels, fake, fake_labels)
                g_terms = {term.name: self._weighted(term, update, seen) for term in self.g_terms}
            self._update(self.opt_g, _total(g_terms))
        finally:
            for p in self.d_trainable:
                p.requires_grad_(True)
        return {name: term.detach() for name, term in g_terms.items()}

    def _critic(self, images: torch.Tensor, labels: torch.Tensor) -> Outputs:
        """D's float32 outputs on images as it sees them (through the augmentation), outside D's own update's forward."""
        return _split(self.D(self.augment(images), labels))

    def discriminate(
        self, real: torch.Tensor, real_labels: torch.Tensor, fake: torch.Tensor, fake_labels: torch.Tensor
    ) -> tuple[Outputs, Outputs]:
        """D's float32 (logits, class logits or None) on both batches: in one forward where that is the same function."""
        real, fake = self.augment(real), self.augment(fake)
        if not self.joint_d:
            return _split(self.D_update(real, real_labels)), _split(self.D_update(fake, fake_labels))
        logits, classes = _split(self.D_update(torch.cat([real, fake]), torch.cat([real_labels, fake_labels])))
        n = real.shape[0]
        if classes is None:
            return (logits[:n], None), (logits[n:], None)
        return (logits[:n], classes[:n]), (logits[n:], classes[n:])

    @staticmethod
    def _update(optimiser: torch.optim.Optimizer, loss: torch.Tensor) -> None:
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()


@contextlib.contextmanager
def _seeded_fork(key: int, device: torch.device) -> Iterator[None]:
    """Torch's RNG on the CPU (and on `device`'s GPU) seeded with `key` inside, and as it was outside."""
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else [], device_type=device.type):
        torch.default_generator.manual_seed(key)
        if device.type == "cuda":
            torch.cuda.default_generators[device.index].manual_seed(key)
        yield


def _total(terms: dict[str, torch.Tensor]) -> torch.Tensor:
    """The terms added in order (a net's loss)."""
    return functools.reduce(operator.add, terms.values())


def _split(out: torch.Tensor | tuple[torch.Tensor, torch.Tensor]) -> Outputs:
    """D's output as float32 (logits, class logits); only an ACGAN D has the second."""
    if isinstance(out, tuple):
        return out[0].float(), out[1].float()
    return out.float(), None
