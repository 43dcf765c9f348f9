#!/usr/bin/env python3
"""Peers for `gpu-fmnist bench`: the report's two models in PyTorch and Keras, timed per epoch.

Trains the same MLP and CNN as `src/graph/model.rs` (`mlp()`, `cnn()`): Keras-style
initialization (Glorot-uniform kernels, zero biases), BatchNorm momentum 0.99 / epsilon 1e-3,
L2 added to the loss as Keras does, SGD 0.1 for the MLP and Adam 1e-3 (epsilon 1e-7) for the CNN,
on the first 55,000 training images (the last 5,000 are validation, as in `gpu-fmnist train`).
The data sit on the device before the clock starts; one untimed warm-up step precedes the epoch.

Prints one JSON object per line: {"engine", "model", "device", "threads", "batch", "steps",
"seconds", "images_per_s"}; a missing engine prints {"engine", "missing": reason}.
Used by `gpu-fmnist bench --peers`; runnable alone:
    python3 benches/peers.py --data-dir /usr/share/datasets/fashion-mnist --engine torch --device cpu
"""
import argparse
import gzip
import importlib.util
import json
import os
import subprocess
import sys
import time


def idx(path):
    import numpy as np

    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read()
    dims = raw[3]
    shape = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def load(data_dir):
    def find(stem):
        for name in (stem + ".gz", stem):
            p = os.path.join(data_dir, name)
            if os.path.exists(p):
                return p
        raise SystemExit(f"peers.py: {stem}(.gz) not found in {data_dir}")

    x = idx(find("train-images-idx3-ubyte")).astype("float32") / 255.0
    y = idx(find("train-labels-idx1-ubyte")).astype("int64")
    return x[:55000], y[:55000]


def torch_epoch(model_name, x, y, device, threads, batch, max_steps):
    import torch
    import torch.nn as nn

    torch.manual_seed(1)
    if threads:
        torch.set_num_threads(threads)
    dev = torch.device(device)

    def glorot(m):
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            nn.init.xavier_uniform_(m.weight)
            nn.init.zeros_(m.bias)

    if model_name == "mlp":
        net = nn.Sequential(
            nn.Flatten(),
            nn.BatchNorm1d(784, momentum=0.01, eps=1e-3),
            nn.Linear(784, 350), nn.ReLU(), nn.Dropout(0.1),
            nn.Linear(350, 80), nn.ReLU(), nn.Dropout(0.2),
            nn.Linear(80, 10),
        )
        l2 = [(net[2].weight, 1e-6), (net[5].weight, 1e-6), (net[8].weight, 1e-6)]
        opt = lambda p: torch.optim.SGD(p, lr=0.1)
    else:
        net = nn.Sequential(
            nn.Conv2d(1, 64, 4, padding="same"), nn.ReLU(), nn.MaxPool2d(4),
            nn.Conv2d(64, 64, 4), nn.ReLU(), nn.MaxPool2d(2),
            nn.Dropout(0.6), nn.Flatten(),
            nn.Linear(256, 256), nn.ReLU(),
            nn.Linear(256, 84), nn.ReLU(),
            nn.Linear(84, 10),
        )
        l2 = [(net[8].weight, 1e-4), (net[10].weight, 1e-4), (net[12].weight, 1e-4)]
        opt = lambda p: torch.optim.Adam(p, lr=1e-3, eps=1e-7)
    net.apply(glorot)
    net.to(dev).train()
    optimizer = opt(net.parameters())
    xs = torch.from_numpy(x).unsqueeze(1).to(dev)
    ys = torch.from_numpy(y).to(dev)
    loss_fn = nn.CrossEntropyLoss()
    steps = len(xs) // batch if not max_steps else min(max_steps, len(xs) // batch)

    def step(idx):
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(net(xs[idx]), ys[idx])
        for w, c in l2:
            loss = loss + c * (w * w).sum()
        loss.backward()
        optimizer.step()

    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    order = torch.randperm(len(xs), device=dev)
    step(order[:batch])
    sync()
    start = time.perf_counter()
    for s in range(steps):
        step(order[s * batch : (s + 1) * batch])
    sync()
    return steps, time.perf_counter() - start


def keras_epoch(model_name, x, y, device, threads, batch, max_steps):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if device == "cpu":
        os.environ["CUDA_VISIBLE_DEVICES"] = ""
    import tensorflow as tf
    from tensorflow import keras
    from tensorflow.keras import layers, regularizers

    if threads:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    keras.utils.set_random_seed(1)
    if model_name == "mlp":
        r = regularizers.l2(1e-6)
        model = keras.Sequential([
            keras.Input((28, 28)), layers.Flatten(), layers.BatchNormalization(),
            layers.Dense(350, activation="relu", kernel_regularizer=r), layers.Dropout(0.1),
            layers.Dense(80, activation="relu", kernel_regularizer=r), layers.Dropout(0.2),
            layers.Dense(10, activation="softmax", kernel_regularizer=r),
        ])
        opt = keras.optimizers.SGD(0.1)
    else:
        r = regularizers.l2(1e-4)
        model = keras.Sequential([
            keras.Input((28, 28, 1)),
            layers.Conv2D(64, 4, padding="same", activation="relu"), layers.MaxPooling2D(4),
            layers.Conv2D(64, 4, activation="relu"), layers.MaxPooling2D(2),
            layers.Dropout(0.6), layers.Flatten(),
            layers.Dense(256, activation="relu", kernel_regularizer=r),
            layers.Dense(84, activation="relu", kernel_regularizer=r),
            layers.Dense(10, activation="softmax", kernel_regularizer=r),
        ])
        opt = keras.optimizers.Adam(1e-3)
        x = x[..., None]
    model.compile(opt, "sparse_categorical_crossentropy")
    steps = len(x) // batch if not max_steps else min(max_steps, len(x) // batch)
    n = steps * batch
    model.fit(x[:batch], y[:batch], batch_size=batch, epochs=1, verbose=0)
    start = time.perf_counter()
    model.fit(x[:n], y[:n], batch_size=batch, epochs=1, verbose=0, shuffle=True)
    return steps, time.perf_counter() - start


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--engine", default="torch,keras")
    ap.add_argument("--model", default="mlp,cnn")
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--threads", default="0", help="comma list; 0 = the engine's default")
    ap.add_argument("--batch", default="32")
    ap.add_argument("--steps", type=int, default=0, help="time this many steps, not a whole epoch")
    a = ap.parse_args()
    runners = {"torch": torch_epoch, "keras": keras_epoch}
    available = []
    for engine in a.engine.split(","):
        if engine not in runners:
            raise SystemExit(f"peers.py: unknown engine {engine!r} (torch, keras)")
        # Looked up, not imported: PyTorch and TensorFlow in one process abort (two LLVMs).
        needs = ("numpy", "torch" if engine == "torch" else "tensorflow")
        lacking = [m for m in needs if importlib.util.find_spec(m) is None]
        if lacking:
            print(json.dumps({"engine": engine, "missing": f"no module named {lacking[0]!r}"}), flush=True)
        else:
            available.append(engine)
    thread_counts = [int(t) for t in a.threads.split(",")]
    # One process per engine, and per thread count for Keras (TensorFlow fixes its thread pools
    # once per process): when there is more than one, this process runs each as a child.
    plan = [(e, [t]) if e == "keras" else (e, thread_counts) for e in available for t in thread_counts]
    plan = list(dict.fromkeys((e, tuple(ts)) for e, ts in plan))
    if len(plan) > 1:
        for engine, ts in plan:
            argv = [sys.executable, __file__, "--engine", engine, "--threads", ",".join(map(str, ts))]
            argv += ["--model", a.model, "--batch", a.batch, "--steps", str(a.steps)]
            argv += ["--device", a.device, "--data-dir", a.data_dir]
            subprocess.run(argv, check=True)
        return 0
    if not available:
        return 0
    x, y = load(a.data_dir)
    for engine in available:
        for model in a.model.split(","):
            for threads in thread_counts:
                for batch in [int(b) for b in a.batch.split(",")]:
                    steps, secs = runners[engine](model, x, y, a.device, threads, batch, a.steps)
                    print(json.dumps({
                        "engine": engine, "model": model, "device": a.device, "threads": threads,
                        "batch": batch, "steps": steps, "seconds": secs,
                        "images_per_s": steps * batch / secs,
                    }), flush=True)
    return 0

if __name__ == "__main__":
    sys.exit(main())
