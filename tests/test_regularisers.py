import pytest
import torch

import gankit
from gankit.checkpoint import load_checkpoint
from gankit.config import apply_overrides, load_preset
from gankit.data import unlabelled
from gankit.errors import GankitError
from gankit.models import build_models
from gankit.regularisers import config_terms
from gankit.regularisers.gradient_penalty import interpolated_gradient_penalty
from gankit.regularisers.r1 import gradient_norm_penalty, r1_penalty
from gankit.terms import Seen, Term
from gankit.training.callbacks import Callback
from gankit.training.loop import config_step

from conftest import straight_and_split, tiny_config, train_tiny


def test_r1_against_its_definition_on_a_linear_discriminator():
    # D(x) = x · w: ∇ₓ D = w for every image, so R1 = γ/2 · ‖w‖²
    w = torch.tensor([[[1.0, -2.0], [0.5, 3.0]]])
    D = lambda x: (x * w).flatten(1).sum(1)  # noqa: E731
    real = torch.randn(5, 1, 2, 2)
    term = gradient_norm_penalty(D, real, 10.0)
    assert term.item() == torch.tensor(0.5 * 10.0 * (1 + 4 + 0.25 + 9)).item()


def test_r1_is_taken_at_the_real_images_only():
    # D(x) = ½‖x‖²: ∇ₓ D = x, so R1 = γ/2 · mean ‖real‖², whatever the generated images are
    D = lambda x: 0.5 * x.flatten(1).square().sum(1)  # noqa: E731
    real, fake = torch.randn(5, 1, 2, 2), 10 + torch.randn(5, 1, 2, 2)
    term = r1_penalty(Seen(lambda x, labels: (D(x), None), real, unlabelled(real), fake, unlabelled(fake)), 4.0)
    assert term.item() == pytest.approx(0.5 * 4.0 * real.flatten(1).square().sum(1).mean().item(), rel=1e-6)


def test_r1_gradient_reaches_d_s_weights():
    D = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 3), torch.nn.Tanh(), torch.nn.Linear(3, 1))
    term = gradient_norm_penalty(lambda x: D(x).squeeze(1), torch.randn(6, 1, 2, 2), 1.0)
    term.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in D[1].parameters())


def test_r1_from_the_config_trains_and_is_reported(mnist_dir, tmp_path):
    run = train_tiny(mnist_dir, tmp_path / "r", "train.epochs=1", "train.r1_gamma=10")
    assert run.metrics()[-1]["r1_penalty"] > 0


def test_spectral_norm_makes_each_layer_s_largest_singular_value_one():
    from gankit.config import apply_overrides, load_preset
    from gankit.models import build_models

    torch.manual_seed(0)
    G, D = build_models(apply_overrides(load_preset("dcgan-mnist"), ["model.spectral_norm=d", "model.base_channels=8"]))
    D.train()
    x = torch.rand(4, 1, 32, 32)
    for _ in range(30):  # power iterations run in training-mode forwards
        D(x, unlabelled(x))
    layers = [m for m in D.modules() if hasattr(m, "parametrizations")]
    assert len(layers) == 5 and not any(hasattr(m, "parametrizations") for m in G.modules())
    for layer in layers:
        weight = layer.weight.detach().flatten(1)  # the normalised weight
        assert abs(torch.linalg.matrix_norm(weight, ord=2).item() - 1.0) < 0.01


def test_spectral_norm_on_g_too_makes_each_layer_s_largest_singular_value_one():
    torch.manual_seed(0)
    G, _ = build_models(
        apply_overrides(load_preset("dcgan-mnist"), ["model.spectral_norm=both", "model.base_channels=8"])
    )
    G.train()
    for _ in range(30):
        G(torch.randn(4, G.noise_dim), torch.zeros(4, dtype=torch.long))
    layers = [m for m in G.modules() if hasattr(m, "parametrizations")]
    assert sum(isinstance(m, torch.nn.ConvTranspose2d) for m in layers) == 4
    for layer in layers:
        weight = layer.weight.detach()
        if isinstance(layer, torch.nn.ConvTranspose2d):  # (in, out, k, k): its output channels are the rows
            weight = weight.transpose(0, 1)
        assert abs(torch.linalg.matrix_norm(weight.flatten(1), ord=2).item() - 1.0) < 0.01


def test_spectral_norm_trains_and_resumes_exactly(mnist_dir, tmp_path):

    a, b = straight_and_split(mnist_dir, tmp_path, "model.spectral_norm=both", "train.r1_gamma=1")
    for net in ("generator", "discriminator"):
        assert any("parametrizations" in key for key in a[net])
        assert all(torch.equal(a[net][k], b[net][k]) for k in a[net])


def test_ema_update_formula_and_warmup():
    from gankit.config import apply_overrides, load_preset
    from gankit.training.state import EMAUpdate, new_state

    config = apply_overrides(
        load_preset("report-gan-mnist"),
        ["train.ema_decay=0.9", "train.ema_warmup=1", "model.g_hidden=[8]", "model.d_hidden=[8]"],
    )
    state = new_state(config, torch.device("cpu"))
    update = EMAUpdate(state)
    with torch.no_grad():
        for p in state.G.parameters():
            p.add_(1.0)
    update(None)  # warm-up: a copy
    assert all(torch.equal(a, b) for a, b in zip(state.G_ema.parameters(), state.G.parameters()))
    before = [p.clone() for p in state.G_ema.parameters()]
    with torch.no_grad():
        for p in state.G.parameters():
            p.add_(2.0)
    update(None)
    for old, new, current in zip(before, state.G_ema.parameters(), state.G.parameters()):
        assert torch.allclose(new, 0.9 * old + 0.1 * current, atol=1e-6)
    assert state.ema_updates == 2


def test_ema_trains_resumes_exactly_and_samples_by_default(mnist_dir, tmp_path):
    import gankit

    a, b = straight_and_split(mnist_dir, tmp_path, "train.ema_decay=0.99", "train.ema_warmup=3")
    run = gankit.load_run(tmp_path / "split")
    assert a["ema_updates"] == b["ema_updates"] == 2 * 512 // 64
    assert all(torch.equal(a["generator_ema"][k], b["generator_ema"][k]) for k in a["generator_ema"])
    average, raw = run.generator(), run.generator(raw=True)
    assert all(torch.equal(x, a["generator_ema"][k]) for k, x in average.state_dict().items())
    assert not all(torch.equal(x, a["generator_ema"][k]) for k, x in raw.state_dict().items())
    assert not torch.equal(run.sample(8, seed=1), run.sample(8, seed=1, raw=True))


def test_the_raw_g_on_request_in_grids_scores_and_the_report(mnist_dir, tmp_path):
    import re

    from gankit.training.state import new_state

    ema = ("train.ema_decay=0.99", "train.epochs=1")
    state = new_state(tiny_config(*ema), torch.device("cpu"))
    assert state.sampler is state.G_ema
    raw_state = new_state(tiny_config(*ema, "output.sample_from=raw"), torch.device("cpu"))
    assert raw_state.G_ema is not None and raw_state.sampler is raw_state.G
    with pytest.raises(GankitError, match="output.sample_from"):
        tiny_config("output.sample_from=best")

    run = train_tiny(mnist_dir, tmp_path / "r", *ema)
    final = lambda page: re.search(r"id='final'>.*?</section>", page.read_text(), re.S).group(0)  # noqa: E731
    average = final(run.report(tmp_path / "average.html"))
    raw = final(run.report(tmp_path / "raw.html", raw=True))
    assert "the moving average of G's weights" in average and "G's own weights" in raw
    assert average.split("src=")[1] != raw.split("src=")[1]  # other images
    run.config.output.sample_from = "raw"  # as if the run had asked for it: the report follows
    assert final(run.report(tmp_path / "as-configured.html")) == raw


def test_diffaugment_is_differentiable_seeded_and_off_when_empty():
    from gankit.augment import diff_augment, parse_policy

    policy = parse_policy("color,translation,cutout")
    x = torch.rand(6, 3, 16, 16, requires_grad=True)
    torch.manual_seed(1)
    a = diff_augment(x, policy)
    a.sum().backward()
    assert a.shape == x.shape and x.grad is not None and x.grad.abs().sum() > 0
    torch.manual_seed(1)
    assert torch.equal(diff_augment(x, policy), a)  # equal seeds, equal changes
    assert not torch.equal(diff_augment(x, policy), a)
    assert torch.equal(diff_augment(x, parse_policy("")), x)
    # cutout zeroes a square of half the side in every image; translation keeps the rest of the picture
    cut = diff_augment(torch.ones(50, 1, 8, 8), ["cutout"])
    assert ((cut == 0).flatten(1).sum(1) <= 16).all() and ((cut == 0).flatten(1).sum(1) >= 4).all()
    shifted = diff_augment(torch.ones(50, 1, 8, 8), ["translation"])
    assert (shifted.flatten(1).sum(1) >= 49).all()  # a shift of at most 1 pixel each way on 8 pixels


def test_diffaugment_trains_and_resumes_exactly(mnist_dir, tmp_path):

    from conftest import tiny_config

    a, b = straight_and_split(mnist_dir, tmp_path, "train.diffaugment=color,translation,cutout")
    assert all(torch.equal(a["generator"][k], b["generator"][k]) for k in a["generator"])
    with pytest.raises(GankitError, match="train.diffaugment: unknown part 'rotate'"):
        tiny_config("train.diffaugment=color,rotate")


def test_diffaugment_is_wired_into_both_nets_steps_and_r1(mnist_dir, tmp_path):
    import json

    runs = {}
    for name, extra in (("off", ()), ("on", ("train.diffaugment=translation,cutout", "train.r1_gamma=1"))):
        run = train_tiny(mnist_dir, tmp_path / name, "train.epochs=1", "train.r1_gamma=1", *extra)
        runs[name] = [json.loads(line) for line in (run.path / "metrics.jsonl").read_text().splitlines()][-1]
    assert runs["on"]["d_loss"] != runs["off"]["d_loss"] and runs["on"]["g_loss"] != runs["off"]["g_loss"]
    assert runs["on"]["r1_penalty"] != runs["off"]["r1_penalty"]


def test_diffaugment_sees_the_real_and_the_generated_images_in_d_s_step_r1_and_g_s_step():
    from gankit.augment import Augmentation
    from gankit.training.state import new_state

    seen: list[torch.Tensor] = []

    class Record(Augmentation):
        def __call__(self, x: torch.Tensor) -> torch.Tensor:
            seen.append(x)
            return x

    config = tiny_config("train.r1_gamma=1")
    torch.manual_seed(0)
    state = new_state(config, torch.device("cpu"))
    step = config_step(state, torch.device("cpu"), augment=Record())
    real = torch.rand(4, 1, 28, 28) * 2 - 1
    step(real, unlabelled(real))
    d_real, d_fake, r1_real, g_fake = seen
    assert torch.equal(d_real, real) and torch.equal(r1_real, real)
    assert (
        not d_fake.requires_grad and g_fake.requires_grad
    )  # G learns through the augmentation, D's step does not reach G
    assert torch.equal(d_fake, g_fake.detach())  # the same generated images, augmented in each step


def test_diffaugment_keeps_a_zero_to_one_range_centred():
    from gankit.augment import diff_augment

    grey = torch.full((4, 1, 8, 8), 0.5)  # mid-grey in [0, 1] is 0 in [-1, 1]: cutout and padding leave it be
    assert torch.equal(diff_augment(grey, ["translation", "cutout"], (0.0, 1.0)), grey)


def test_r1_with_compile_is_refused():
    from conftest import tiny_config

    with pytest.raises(GankitError, match="train.r1_gamma needs the gradient of a gradient"):
        tiny_config("train.r1_gamma=1", "train.compile=true")


def test_gradient_penalty_against_its_definition_on_a_linear_critic():
    # D(x) = x · w: ∇ D = w at every point between real and fake, so the penalty is λ (‖w‖ − 1)²
    w = torch.tensor([[[1.0, -2.0], [0.5, 3.0]]])
    D = lambda x: (x * w).flatten(1).sum(1)  # noqa: E731
    term = interpolated_gradient_penalty(D, torch.randn(5, 1, 2, 2), torch.randn(5, 1, 2, 2), 10.0)
    assert term.item() == pytest.approx(10.0 * (w.norm().item() - 1) ** 2, rel=1e-6)


def test_the_gradient_penalty_is_taken_between_real_and_fake():
    # D(x) = ½‖x‖²: ∇ D(x̂) = x̂ = εx + (1 − ε)G(z), with ε drawn from torch's RNG, one per image
    D = lambda x: 0.5 * x.flatten(1).square().sum(1)  # noqa: E731
    real, fake = torch.randn(6, 1, 2, 2), 3 + torch.randn(6, 1, 2, 2)
    torch.manual_seed(7)
    term = interpolated_gradient_penalty(D, real, fake, 10.0)
    torch.manual_seed(7)
    epsilon = torch.rand(6, 1, 1, 1)
    mixed = epsilon * real + (1 - epsilon) * fake
    assert term.item() == pytest.approx(10.0 * (mixed.flatten(1).norm(dim=1) - 1).square().mean().item(), rel=1e-6)


def test_the_gradient_penalty_is_zero_for_a_unit_gradient_and_reaches_d_s_weights():
    unit = torch.full((1, 2, 2), 0.5)  # ‖w‖ = 1
    term = interpolated_gradient_penalty(
        lambda x: (x * unit).flatten(1).sum(1), torch.randn(3, 1, 2, 2), torch.randn(3, 1, 2, 2), 10.0
    )
    assert term.item() == pytest.approx(0.0, abs=1e-10)
    D = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 3), torch.nn.Tanh(), torch.nn.Linear(3, 1))
    interpolated_gradient_penalty(
        lambda x: D(x).squeeze(1), torch.randn(6, 1, 2, 2), torch.randn(6, 1, 2, 2), 1.0
    ).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in D[1].parameters())


def test_d_steps_update_g_on_every_n_th_batch_of_the_run_not_of_the_epoch(mnist_dir, tmp_path):
    # 3 batches of 64 an epoch and 5 D updates per G update: G at the run's batches 0 and 5, none in epoch 3
    run = train_tiny(
        mnist_dir,
        tmp_path / "r",
        "train.epochs=3",
        "train.d_steps=5",
        "train.loss=wgan",
        "train.gp_lambda=10",
        "data.limit=192",
    )
    state = load_checkpoint(run.checkpoint())
    assert {float(s["step"]) for s in state["opt_g"]["state"].values()} == {2.0}  # counted per epoch: 3
    assert {float(s["step"]) for s in state["opt_d"]["state"].values()} == {9.0}
    first, second, third = run.metrics()
    assert "g_loss" in first and "g_loss" in second and "g_loss" not in third  # G's terms only where G updated
    assert third["gradient_penalty"] > 0 and "collapsed" in third and not third["collapsed"]


def test_a_d_only_step_updates_d_alone_and_reports_d_s_terms_only():
    from gankit.training.state import new_state

    config = tiny_config("model.dropout=0")
    state = new_state(config, torch.device("cpu"))
    hooked = []
    step = config_step(state, torch.device("cpu"), after_step=[hooked.append])
    g_before = [p.detach().clone() for p in state.G.parameters()]
    d_before = [p.detach().clone() for p in state.D.parameters()]
    real = torch.rand(16, 1, 28, 28)
    stats = step(real, unlabelled(real), update_g=False)  # a fresh step may start on a D-only update (resume)
    assert "d_loss" in stats and not any(name.startswith("g_") for name in stats) and hooked == []
    assert all(torch.equal(a, b) for a, b in zip(g_before, state.G.parameters()))
    assert not all(torch.equal(a, b) for a, b in zip(d_before, state.D.parameters()))
    stats = step(real, unlabelled(real))
    assert "g_loss" in stats and hooked == [step]


def test_epoch_stats_average_each_term_over_the_steps_that_report_it():
    from gankit.training.sums import StatSums

    sums = StatSums()
    for d_loss, g_loss in [(1.0, 4.0), (2.0, None), (3.0, None), (6.0, 8.0)]:
        stats = {
            "d_loss": torch.tensor(d_loss),
            **({"g_loss": torch.tensor(g_loss)} if g_loss else {}),
            "d_acc_real": torch.tensor(d_loss / 10),
        }
        sums.add(stats)
    means = sums.means()
    assert list(means) == ["d_loss", "g_loss", "d_acc_real"]
    assert means["d_loss"] == pytest.approx(3.0) and means["g_loss"] == pytest.approx(6.0)
    assert means["d_acc_real"] == pytest.approx(0.3)


def test_standing_statistics_average_g_s_own_batches_and_leave_the_training_rng_alone():
    from gankit.training.state import standing_statistics

    torch.manual_seed(0)
    G = build_models(apply_overrides(load_preset("dcgan-mnist"), ["model.base_channels=4"]))[0].eval()
    first = G.project[1]  # the batch norm after the dense layer
    seen = []
    hook = first.register_forward_hook(lambda module, inputs, output: seen.append(inputs[0].detach().clone()))
    rng = torch.get_rng_state()
    standing_statistics(G, seed=3, batches=4, batch_size=8)
    hook.remove()
    assert torch.equal(torch.get_rng_state(), rng) and not G.training and first.momentum == 0.1
    batches = torch.stack(seen)  # 4 batches of 8: the running mean is the mean of the 4 batch means
    assert torch.allclose(first.running_mean, batches.mean(dim=(0, 1)), atol=1e-6)
    assert torch.allclose(first.running_var, batches.var(dim=1, unbiased=True).mean(0), atol=1e-5)


def test_ema_of_a_batch_norm_g_resumes_exactly(mnist_dir, tmp_path):
    options = ["train.epochs=2", "train.ema_decay=0.9", "model.base_channels=4", "data.limit=256"]

    class StopAfterEpochOne(Callback):
        def on_epoch_end(self, epoch):
            if epoch.state.epoch == 1:
                epoch.stop = "stopped for the test"

    straight = gankit.train(tiny_config(*options, preset="dcgan-mnist"), tmp_path / "straight", data_dir=mnist_dir)
    gankit.train(
        tiny_config(*options, preset="dcgan-mnist"),
        tmp_path / "split",
        data_dir=mnist_dir,
        hooks=gankit.Hooks(callbacks=[StopAfterEpochOne()]),
    )
    split = gankit.train(None, tmp_path / "split", resume=True)
    a, b = (load_checkpoint(r.checkpoint())["generator_ema"] for r in (straight, split))
    assert any("running_mean" in key for key in a) and all(torch.equal(a[key], b[key]) for key in a)


def test_lazy_r1_is_every_k_th_update_times_k_and_counts_on_from_d_s_optimiser():
    from gankit.training.state import new_state

    config = tiny_config("train.r1_gamma=10", "train.r1_every=3", "model.dropout=0")
    assert [(t.name, t.every) for t in config_terms(config.train)] == [("r1_penalty", 3)]
    state = new_state(config, torch.device("cpu"))
    step = config_step(state, torch.device("cpu"))
    real = torch.rand(16, 1, 28, 28)
    for update in range(5):
        eager = gradient_norm_penalty(lambda x: state.D(x, unlabelled(x)).float(), real, 10.0)  # D before this update
        term = step(real, unlabelled(real))["r1_penalty"]
        expected = 3 * eager if update % 3 == 0 else torch.tensor(0.0)
        assert torch.allclose(term, expected, rtol=1e-5), (update, term, eager)
    # a step built later (as on resume) goes on counting from D's optimiser: update 5 is off, update 6 on
    later = config_step(state, torch.device("cpu"))
    assert later(real, unlabelled(real))["r1_penalty"] == 0 and later(real, unlabelled(real))["r1_penalty"] > 0


def test_lazy_r1_needs_a_penalty_and_a_term_a_net_and_an_interval():
    with pytest.raises(GankitError, match="train.r1_every 4 makes the R1 penalty lazy, but train.r1_gamma is 0"):
        tiny_config("train.r1_every=4")
    with pytest.raises(ValueError, match="term r1: net must be one of D, G, got 'E'"):
        Term("r1", "E", lambda seen: seen.real)
    with pytest.raises(ValueError, match="term r1: every must be at least 1, got 0"):
        Term("r1", "D", lambda seen: seen.real, every=0)


def test_resume_is_bit_identical_with_ema_lazy_r1_gp_diffaugment_d_steps_and_fresh_noise(mnist_dir, tmp_path):
    # 8 batches an epoch and R1 on every 3rd: the resumed run must keep the phase of the lazy penalty
    options = [
        "train.ema_decay=0.9",
        "train.r1_gamma=1",
        "train.r1_every=3",
        "train.gp_lambda=10",
        "train.loss=wgan",
        "train.d_steps=3",
        "train.diffaugment=color,translation,cutout",
        "train.g_noise=fresh",
    ]
    a, b = straight_and_split(mnist_dir, tmp_path, *options)
    for net in ("generator", "generator_ema", "discriminator"):
        for key in a[net]:
            assert torch.equal(a[net][key], b[net][key]), (net, key)
    # epoch 2 starts on a D-only step (the run's batch 8 of every 3rd): its G terms average over G's updates alike
    timing = {"images_per_s", "epoch_seconds", "elapsed_seconds"}
    records = [
        {k: v for k, v in gankit.load_run(tmp_path / r).metrics()[-1].items() if k not in timing}
        for r in ("straight", "split")
    ]
    assert records[0] == records[1] and "g_loss" in records[0]
