"""The course report's seed GAN in Keras, as the report writes it, to compare
how often the original collapses ("D wins outright") with gankit's PyTorch port.

Install into a venv of its own (it must not import gankit or torch):

    python3 -m venv ../tfvenv && ../tfvenv/bin/pip install 'tensorflow-cpu>=2.16' 'tf-keras>=2.16' pillow

(the same packages as gankit's `keras-reference` extra, without gankit and torch).

Run (legacy Keras 2 = tf-keras, the report's era, is the default):

    ../tfvenv/bin/python bench/keras_reference.py --seeds 0,1,2,3,4 --epochs 30 \
        --out runs/keras [--real-label 0.9] [--keras legacy|3] [--data-dir ../shared/data/mnist]

Model and loop follow the widely copied Keras MNIST GAN tutorial the report follows: G and D are
Sequential MLPs, both compiled with binary cross-entropy, Adam(2e-4, beta_1=0.5) and
metrics=['accuracy']; gan = D(G(z)) with D.trainable=False, compiled the same way. Each step: noise
N(0,1) of shape (128, 100); a real batch drawn with replacement (np.random.randint); D.train_on_batch
on [real; fake] with targets real_label (0.9, one-sided smoothing) and 0; then
gan.train_on_batch(fresh noise, ones). The tutorial's loop ran `range(batch_size)`, i.e. only 128
steps per "epoch" (a well-known bug); we run 60000 // 128 = 468 so epochs match gankit's.

Logged per epoch to DIR/seed-N/history.jsonl: mean D and G loss (train_on_batch's losses) and D's
accuracy on each step's real and fake batch, taken from D's own inference-mode predictions (threshold
0.5) before its update: the compiled 'accuracy' metric is useless here since it compares the
thresholded output with the smoothed target 0.9 and so never counts a real image as right.
Samples: 10,000 images at epochs 10, 20, 30 as uint8 (10000, 1, 28, 28), from the same fixed noise
(seed 2024) for every epoch and run; 8x8 PNG grids of the first 64 at epochs 1, 10, 20, 30.
Seeding: python, numpy and TF via keras.utils.set_random_seed; TF on the CPU is not guaranteed to
be bit-deterministic (threaded reductions), so reruns of a seed can drift apart.
At start it prints which binary cross-entropy path this Keras takes on a model's sigmoid output
(logits, or probabilities clipped to [1e-7, 1 - 1e-7], whose gradient is zero beyond the clip).
"""

from __future__ import annotations

import argparse
import gzip
import importlib.metadata
import json
import os
import random
import time
from pathlib import Path

import numpy as np

p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
p.add_argument("--seeds", default="0,1,2,3,4")
p.add_argument("--epochs", type=int, default=30)
p.add_argument("--out", type=Path, default=Path("keras-runs"))
p.add_argument("--real-label", type=float, default=0.9)
p.add_argument("--keras", choices=["legacy", "3"], default="legacy")
p.add_argument("--data-dir", type=Path, default=Path(os.environ.get("GANKIT_DATA_DIR", "../shared/data/mnist")))
p.add_argument("--steps", type=int, default=60000 // 128, help="steps per epoch")
args = p.parse_args()
os.environ["TF_USE_LEGACY_KERAS"] = "1" if args.keras == "legacy" else "0"  # before importing TF
import tensorflow as tf  # noqa: E402

keras = tf.keras  # tf_keras (Keras 2) when TF_USE_LEGACY_KERAS=1, else Keras 3
L = keras.layers
KERAS_VERSION = importlib.metadata.version("tf_keras" if args.keras == "legacy" else "keras")
BATCH, Z, SAMPLE_EPOCHS, GRID_EPOCHS = 128, 100, (10, 20, 30), (1, 10, 20, 30)


def load_mnist(data_dir: Path) -> np.ndarray:
    with gzip.open(data_dir / "train-images-idx3-ubyte.gz") as f:
        x = np.frombuffer(f.read(), np.uint8, offset=16)
    return (x.reshape(-1, 784) / 255.0).astype(np.float32)


def adam() -> keras.optimizers.Optimizer:
    return keras.optimizers.Adam(learning_rate=0.0002, beta_1=0.5)


def build() -> tuple[keras.Model, keras.Model, keras.Model]:
    g = keras.Sequential(
        [keras.Input((Z,))]
        + [m for n in (256, 512, 1024) for m in (L.Dense(n), L.LeakyReLU(0.2))]
        + [L.Dense(784, activation="sigmoid")]
    )
    d = keras.Sequential(
        [keras.Input((784,))]
        + [m for n in (1024, 512, 256) for m in (L.Dense(n), L.LeakyReLU(0.2), L.Dropout(0.3))]
        + [L.Dense(1, activation="sigmoid")]
    )
    for m in (g, d):
        m.compile(loss="binary_crossentropy", optimizer=adam(), metrics=["accuracy"])
    d.trainable = False
    z = keras.Input((Z,))
    gan = keras.Model(z, d(g(z)))
    gan.compile(loss="binary_crossentropy", optimizer=adam(), metrics=["accuracy"])
    return g, d, gan


def bce_check() -> None:
    """Loss and gradient for D(x) = 1e-9 with target 1, through train_on_batch (SGD, lr 1)."""
    logit = float(np.log(1e-9 / (1 - 1e-9)))
    d = keras.Sequential([keras.Input((1,)), L.Dense(1, activation="sigmoid")])
    g = keras.Sequential([keras.Input((1,)), L.Dense(1)])
    d.compile(loss="binary_crossentropy", optimizer=keras.optimizers.SGD(1.0))
    z, one = keras.Input((1,)), np.ones((1, 1), np.float32)
    print(
        f"BCE check (Keras {KERAS_VERSION}): D output 1e-9, target 1. Expected loss {-logit:.2f} "
        "and gradient -1 from logits, 15.42 (tf-keras) / 16.12 (Keras 3) and 0 if clipped."
    )
    for name, model, layer in (
        ("D.train_on_batch", d, d.layers[-1]),
        ("gan.train_on_batch, grad on G", None, g.layers[-1]),
    ):
        d.layers[-1].set_weights([np.ones((1, 1)), np.array([logit])])
        g.layers[-1].set_weights([np.ones((1, 1)), np.zeros(1)])
        if model is None:  # the combined model, built after D has been trained once, as in training
            d.trainable = False
            model = keras.Model(z, d(g(z)))
            model.compile(loss="binary_crossentropy", optimizer=keras.optimizers.SGD(1.0))
        before = layer.get_weights()[1][0]
        loss = model.train_on_batch(np.zeros_like(one), one)
        print(f"  {name}: loss {float(np.ravel(loss)[0]):.4f}, gradient {before - layer.get_weights()[1][0]:+.4f}")
    plain = keras.losses.binary_crossentropy(tf.constant(one), tf.constant([[1e-9]]))
    print(f"  plain probability tensor (no model): loss {float(np.ravel(plain)[0]):.4f}")


def save_grid(images: np.ndarray, path: Path) -> None:
    from PIL import Image

    tiles = images[:64].reshape(8, 8, 28, 28).transpose(0, 2, 1, 3).reshape(224, 224)
    Image.fromarray(tiles).resize((448, 448), Image.NEAREST).save(path)


def train(seed: int, x: np.ndarray) -> None:
    out = args.out / f"seed-{seed}"
    out.mkdir(parents=True, exist_ok=True)
    keras.backend.clear_session()
    random.seed(seed)
    np.random.seed(seed)
    keras.utils.set_random_seed(seed)
    g, d, gan = build()
    gen = tf.function(lambda z: g(z, training=False))
    judge = tf.function(lambda v: d(v, training=False))
    fixed = np.random.default_rng(2024).standard_normal((10000, Z)).astype(np.float32)
    y_dis = np.zeros((2 * BATCH, 1), np.float32)
    y_dis[:BATCH] = args.real_label
    ones = np.ones((BATCH, 1), np.float32)
    with open(out / "history.jsonl", "w") as hist:
        for epoch in range(1, args.epochs + 1):
            t0, sums = time.perf_counter(), np.zeros(4)
            for _ in range(args.steps):
                noise = np.random.normal(0, 1, (BATCH, Z)).astype(np.float32)
                fake = gen(noise).numpy()
                real = x[np.random.randint(0, x.shape[0], BATCH)]
                batch = np.concatenate([real, fake])
                pred = judge(batch).numpy()[:, 0]
                d.trainable = True  # as the tutorial does; Keras 2 honours the compile-time state
                d_loss = d.train_on_batch(batch, y_dis)[0]
                noise = np.random.normal(0, 1, (BATCH, Z)).astype(np.float32)
                d.trainable = False
                g_loss = gan.train_on_batch(noise, ones)[0]
                sums += (d_loss, g_loss, np.mean(pred[:BATCH] > 0.5), np.mean(pred[BATCH:] < 0.5))
            row = dict(zip(("d_loss", "g_loss", "d_acc_real", "d_acc_fake"), map(float, sums / args.steps)))
            row = {"epoch": epoch, **row, "seconds": round(time.perf_counter() - t0, 2)}
            hist.write(json.dumps(row) + "\n")
            hist.flush()
            print(f"seed {seed} " + " ".join(f"{k} {v:.4g}" for k, v in row.items()), flush=True)
            if epoch in SAMPLE_EPOCHS or epoch in GRID_EPOCHS:
                imgs = np.round(gen(fixed).numpy() * 255).astype(np.uint8).reshape(-1, 1, 28, 28)
                if epoch in SAMPLE_EPOCHS:
                    np.save(out / f"samples-epoch-{epoch:04d}.npy", imgs)
                if epoch in GRID_EPOCHS:
                    save_grid(imgs[:, 0], out / f"grid-epoch-{epoch:04d}.png")


if __name__ == "__main__":
    print(f"TensorFlow {tf.__version__}, Keras {KERAS_VERSION} ({args.keras}), real label {args.real_label}")
    bce_check()
    data = load_mnist(args.data_dir)
    for s in (int(v) for v in args.seeds.split(",")):
        train(s, data)
