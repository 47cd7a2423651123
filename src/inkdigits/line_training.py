"""Training the line model (Keras, CTC loss) and exporting it to ONNX.

The model reads a :func:`lines.line_view` strip (LINE_HEIGHT x W) with five
3x3 convolution blocks (32-64-96-96-128 channels; pooled to W / 4 columns
and 2 rows), then two 1-D convolutions along the line (kernel 5, the second
dilated by 2: each output step sees about four digits around it) and gives
per step the ten digits and the CTC blank. It is fully convolutional: any
width is read. Training pads each batch on the right to a multiple of
PAD_TO columns; reading pads each line the same way (``LineModel``).
``--architecture line-rnn`` puts a bidirectional LSTM between the 1-D
convolutions and the output (see :func:`build`).

    inkdigits line-data --count 50000 --seed 1 --out runs/train/lines-s1.npz
    inkdigits line-data --count 50000 --seed 2 --out runs/train/lines-s2.npz
    inkdigits train-line --data runs/train/lines-s*.npz --epochs 10 --out runs/train/line
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ._backend import keras, quiet_native_stderr
from .classifier import load_card
from .errors import ConfigError, DataError, ModelError
from .extra import file_sha256
from .line_data import WIDEST
from .lines import BLANK, LINE_HEIGHT, PAD_TO, STEP, check_fusion, decode

MAX_DIGITS = 12  # the longest label a training line may have
RNN_UNITS = 96  # line-rnn: LSTM units each way
PARITY_TOLERANCE = 1e-4


ARCHITECTURES = ("line-cnn", "line-rnn")


def build(seed: int = 0, architecture: str = "line-cnn") -> keras.Model:
    """The line model, outputs logits (N, W / STEP, 11).

    ``line-rnn`` adds a bidirectional LSTM (96 units each way) between the
    1-D convolutions and the output: each step then sees the whole line.
    """
    from keras import layers

    if architecture not in ARCHITECTURES:
        raise ConfigError(f"unknown line architecture {architecture!r}; one of {ARCHITECTURES}")

    keras.utils.set_random_seed(seed)
    inp = keras.Input((LINE_HEIGHT, None, 1), name="input")
    x = inp
    for channels, pool in [(32, (2, 2)), (64, (2, 2)), (96, None), (96, (2, 1)), (128, (2, 1))]:
        x = layers.Conv2D(channels, 3, padding="same", use_bias=False)(x)
        x = layers.BatchNormalization()(x)
        x = layers.ReLU()(x)
        if pool:
            x = layers.MaxPooling2D(pool)(x)
    x = layers.Permute((2, 1, 3))(x)  # (N, W / 4, 2, 128)
    x = layers.Reshape((-1, 2 * 128))(x)
    x = layers.Conv1D(192, 5, padding="same", activation="relu")(x)
    x = layers.Dropout(0.2)(x)
    x = layers.Conv1D(192, 5, padding="same", dilation_rate=2, activation="relu")(x)
    x = layers.Dropout(0.2)(x)
    if architecture == "line-rnn":
        x = layers.Bidirectional(layers.LSTM(RNN_UNITS, return_sequences=True))(x)
        x = layers.Dropout(0.2)(x)
    out = layers.Dense(BLANK + 1, name="logits")(x)
    return keras.Model(inp, out, name=architecture)


def start_from(model: keras.Model, path: str | Path, calibration: np.ndarray | None = None) -> None:
    """Set ``model``'s weights from the line model saved at ``path``.

    The same architecture gives every weight; a line-cnn gives a line-rnn
    everything up to its LSTM (the LSTM and the output layer start afresh).
    A float32 ONNX export of a line-cnn (such as the shipped
    ``inkdigits/weights/checks/line/model.onnx``), or a joint model with a
    line-cnn among its members (the shipped ``inkdigits/weights/line/model.onnx``;
    see :func:`line_ensemble.extract_member`), starts a line-cnn too: its batch
    norms are unfolded from ``calibration`` (line views (N, 32, W, 1) in
    [0, 1]; see :mod:`inkdigits.from_onnx`).
    """
    if Path(path).suffix == ".onnx":
        from .from_onnx import load_onnx_weights

        source = Path(path)
        if source.with_name("card.json").is_file() and (
            load_card(source).get("architecture") == "line-ensemble"
        ):
            from .line_ensemble import extract_member

            with tempfile.TemporaryDirectory() as tmp:
                member = extract_member(source, model.name, Path(tmp) / "member.onnx")
                load_onnx_weights(member, model, calibration)
            return
        load_onnx_weights(path, model, calibration)
        return
    try:
        source = keras.models.load_model(path, compile=False)
    except (OSError, ValueError) as exc:
        raise ModelError(f"{path}: not a line model to start from ({exc})") from None
    if source.name == model.name:
        model.set_weights(source.get_weights())
        return
    if (source.name, model.name) != ("line-cnn", "line-rnn"):
        raise ModelError(f"{path}: a {source.name} cannot start a {model.name}")
    for a, b in zip(source.layers, model.layers, strict=False):
        if type(a) is not type(b):
            break
        b.set_weights(a.get_weights())


def ctc_loss(y_true, y_pred):
    """CTC loss; ``y_true`` rows are (label length, digits..., padding)."""
    from keras import ops

    y_true = ops.cast(y_true, "int32")
    steps = ops.full((ops.shape(y_pred)[0],), ops.shape(y_pred)[1], dtype="int32")
    return ops.ctc_loss(
        y_true[:, 1:], ops.cast(y_pred, "float32"), y_true[:, 0], steps, mask_index=BLANK
    )


def targets(labels: np.ndarray) -> np.ndarray:
    """Digit strings -> (N, 1 + MAX_DIGITS) int32 rows for :func:`ctc_loss`."""
    y = np.zeros((len(labels), MAX_DIGITS + 1), np.int32)
    for i, s in enumerate(labels):
        s = str(s)
        if not s.isdigit() or len(s) > MAX_DIGITS:
            raise DataError(f"line label {s!r}: expected 1-{MAX_DIGITS} digits")
        y[i, 0] = len(s)
        y[i, 1 : 1 + len(s)] = [int(c) for c in s]
    return y


def load_lines(paths: list[str | Path]):
    """Views (N, LINE_HEIGHT, WIDEST) uint8, widths (N,), labels (N,) and each line's file index."""
    xs, ws, ls, fs = [], [], [], []
    for i, path in enumerate(paths):
        try:
            with np.load(path) as d:
                x, w, lab = d["x"], d["widths"], d["labels"]
        except (OSError, KeyError, ValueError) as exc:
            raise DataError(f"{path}: not a line-data file ({exc})") from None
        if x.shape[1:] != (LINE_HEIGHT, WIDEST):
            raise DataError(f"{path}: views of shape {x.shape[1:]}, expected (32, {WIDEST})")
        xs.append(x)
        ws.append(w)
        ls.append(lab)
        fs.append(np.full(len(x), i))
    if not xs:
        raise DataError("no line data given")
    return np.concatenate(xs), np.concatenate(ws), np.concatenate(ls), np.concatenate(fs)


def augment(view: np.ndarray, width: int, rng: np.random.Generator) -> tuple[np.ndarray, int]:
    """A line view as another hand might have written it, and its new width.

    Stretched 0.8-1.2 times along the line and 0.9-1.1 times across it,
    slanted by up to 0.2 (horizontal pixels per vertical pixel), shifted up
    to 1.5 px up or down, and one time in five thickened or one in ten
    thinned by a pixel. Nothing is pushed past the stored width (WIDEST):
    every digit of the label stays in view.
    """
    h = view.shape[0]
    slant = rng.uniform(-0.2, 0.2)
    room = WIDEST - abs(slant) * h - 2  # the slant moves ink up to abs(slant) h right
    sx = min(rng.uniform(0.8, 1.2), room / max(width, 1))
    sy = rng.uniform(0.9, 1.1)
    dy = rng.uniform(-1.5, 1.5)
    # x' = sx x + slant (y - h/2) + |slant| h/2;  y' = sy (y - h/2) + h/2 + dy
    m = np.float32(
        [[sx, slant, abs(slant) * h / 2 - slant * h / 2], [0, sy, (1 - sy) * h / 2 + dy]]
    )
    out = cv2.warpAffine(view, m, (view.shape[1], h), flags=cv2.INTER_LINEAR, borderValue=0)
    u = rng.uniform()
    if u < 0.2:
        out = cv2.dilate(out, np.ones((2, 2), np.uint8))
    elif u < 0.3:
        out = cv2.erode(out, np.ones((2, 2), np.uint8))
    return out, min(WIDEST, int(np.ceil(width * sx + abs(slant) * h)) + 1)


class Batches:
    """Batches of lines of similar widths, each padded to its widest (a multiple of PAD_TO).

    With ``augment``, every line of a training batch is first passed
    through :func:`augment` (a new draw each time it is used).
    """

    def __init__(
        self, x, widths, y, batch: int, shuffle: bool, seed: int = 0, augment: bool = False
    ):
        self.x, self.widths, self.y, self.batch, self.shuffle = x, widths, y, batch, shuffle
        self.augment = augment
        self.rng = np.random.default_rng(seed)
        self.on_epoch_end()

    def on_epoch_end(self) -> None:
        n = len(self.x)
        idx = self.rng.permutation(n) if self.shuffle else np.arange(n)
        chunk = self.batch * 50  # sort by width within chunks: similar widths, still shuffled
        chunks = np.split(idx, range(chunk, n, chunk))
        order = np.concatenate([c[np.argsort(self.widths[c], kind="stable")] for c in chunks])
        self.groups = [order[i : i + self.batch] for i in range(0, n, self.batch)]
        if self.shuffle:
            self.rng.shuffle(self.groups)

    def __len__(self) -> int:
        return len(self.groups)

    def __getitem__(self, i: int):
        g = np.sort(self.groups[i])
        x, widths = self.x[g], self.widths[g]
        if self.augment:
            pairs = [augment(v, int(w), self.rng) for v, w in zip(x, widths, strict=True)]
            x = np.stack([v for v, _ in pairs])
            widths = np.array([w for _, w in pairs])
        width = max(2 * PAD_TO, -(-int(widths.max()) // PAD_TO) * PAD_TO)
        x = x[:, :, :width].astype(np.float32) / 255.0
        if self.shuffle:  # fainter and stronger ink than the view's normalisation gives
            x *= self.rng.uniform(0.6, 1.0, (len(g), 1, 1)).astype(np.float32)
        return x[..., None], self.y[g]


def as_dataset(batches: Batches):
    """The batches as a tf.data.Dataset whose widths may vary from batch to batch.

    (Given a keras PyDataset, Keras takes the shape of its first batches for
    every batch's, and a wider batch later fails.)
    """
    import tensorflow as tf

    signature = (
        tf.TensorSpec((None, LINE_HEIGHT, None, 1), tf.float32),
        tf.TensorSpec((None, MAX_DIGITS + 1), tf.int32),
    )
    data = tf.data.Dataset.from_generator(
        lambda: (batches[i] for i in range(len(batches))), output_signature=signature
    )
    return data.apply(tf.data.experimental.assert_cardinality(len(batches)))


def exact_match(model: keras.Model, x, widths, labels, batch: int = 256) -> float:
    """Share of lines whose greedy CTC reading is exactly their label."""
    import tensorflow as tf

    ok = 0
    data = Batches(x, widths, targets(labels), batch, shuffle=False)
    for i in range(len(data)):
        xb, _ = data[i]
        probs = tf.nn.softmax(model(xb, training=False), axis=-1).numpy()
        for j, k in enumerate(np.sort(data.groups[i])):
            steps = int(widths[k]) // STEP
            ok += decode(probs[j, :steps])[0] == str(labels[k])
    return ok / max(1, len(x))


def train(
    data: list[str | Path],
    out: str | Path,
    val: str | Path | None = None,
    repeat: list[int] | None = None,
    epochs: int = 8,
    batch: int = 64,
    lr: float = 2e-3,
    seed: int = 0,
    init_from: str | Path | None = None,
    augment: bool = False,
    architecture: str = "line-cnn",
    fusion: dict[str, float] | None = None,
    spike_digits: tuple[np.ndarray, np.ndarray] | None = None,
    spike_count: int = 300,
    log=print,
) -> dict[str, Any]:
    """Train a line model on line-data files, export ``out/model.onnx`` with its card.

    ``init_from``: a line model's .keras file to start from (fine-tuning), or
    a float32 ONNX export of a line-cnn (the shipped one; see :func:`start_from`).
    ``augment``: restretch, slant, shift and thicken training lines (:func:`augment`).
    ``fusion``: how the Reader weighs this model against the digit classifier,
    written to the card (entries of :data:`lines.FUSION`; the rest keep theirs).
    ``spike_digits``: digit images and labels to render ``spike_count``
    numbers of, on which the exported model's ``spike_offset`` (where it marks
    a digit) is measured for the card (:func:`line_data.spike_offset`).
    """
    check_fusion(fusion)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    x, widths, labels, files = load_lines(list(data))
    if val is not None:
        xv, wv, lv, _ = load_lines([val])
    else:  # every 25th line (4%), taken before any repeating
        held = np.arange(len(x)) % 25 == 0
        xv, wv, lv = x[held], widths[held], labels[held]
        x, widths, labels, files = x[~held], widths[~held], labels[~held], files[~held]
    if repeat:
        idx = np.concatenate(
            [np.flatnonzero(files == i) for i, k in enumerate(repeat) for _ in range(k)]
        )
        x, widths, labels = x[idx], widths[idx], labels[idx]
    log(f"{len(x)} training lines, {len(xv)} validation lines")
    model = build(seed, architecture)
    if init_from is not None:
        start_from(model, init_from, x[:512, ..., None].astype(np.float32) / 255.0)
    steps = epochs * int(np.ceil(len(x) / batch))
    warmup = min(300, steps // 10)
    schedule = keras.optimizers.schedules.CosineDecay(
        lr / 20, steps - warmup, warmup_target=lr, warmup_steps=warmup
    )
    model.compile(optimizer=keras.optimizers.Adam(schedule, clipnorm=5.0), loss=ctc_loss)
    best, history = -1.0, []
    batches = Batches(x, widths, targets(labels), batch, shuffle=True, seed=seed, augment=augment)
    for epoch in range(1, epochs + 1):
        t = time.time()
        h = model.fit(as_dataset(batches), epochs=1, verbose=0, shuffle=False)
        batches.on_epoch_end()
        acc = exact_match(model, xv, wv, lv)
        loss = float(h.history["loss"][-1])
        history.append({"epoch": epoch, "loss": loss, "val_exact": acc, "seconds": time.time() - t})
        log(f"epoch {epoch}/{epochs}: loss {loss:.3f}, validation exact {100 * acc:.2f}%")
        if acc > best:
            best = acc
            model.save(out / "best.keras")
    best_model = keras.models.load_model(out / "best.keras", compile=False)
    card = {
        "kind": "line",
        "architecture": architecture,
        "input": {"height": LINE_HEIGHT, "step": STEP, "blank": BLANK},
        "training": {
            "data": [str(p) for p in data],
            "data_sha256": [file_sha256(p) for p in data],
            "repeat": repeat,
            "epochs": epochs,
            "batch": batch,
            "lr": lr,
            "seed": seed,
            "init_from": str(init_from) if init_from else None,
            "augment": augment,
            "lines": int(len(x)),
            "history": history,
        },
        "validation_exact_match": best,
    }
    if fusion:
        card["fusion"] = dict(fusion)
    card["onnx"] = export(best_model, out / "model.onnx", xv[:8])
    (out / "card.json").write_text(json.dumps(card, indent=2))
    if spike_digits is not None and spike_count:
        from .line_data import spike_offset
        from .lines import LineModel

        try:
            lag = spike_offset(LineModel(out / "model.onnx"), *spike_digits, spike_count)
        except ValueError as e:
            log(f"spike offset not measured: {e}")
        else:
            card["input"]["spike_offset"] = round(lag, 2)
            (out / "card.json").write_text(json.dumps(card, indent=2))
            log(f"the model marks digits {lag:+.2f} steps from their centres")
    return card


def export(model: keras.Model, path: Path, check: np.ndarray) -> dict[str, Any]:
    """Write the model with a softmax as ONNX (width free), checked against Keras."""
    import tensorflow as tf
    import tf2onnx

    from .lines import LineModel  # noqa: F401 (the reading side's loader must accept it)

    spec = (tf.TensorSpec((None, LINE_HEIGHT, None, 1), tf.float32, name="input"),)

    @tf.function(input_signature=spec)
    def forward(x):
        return {"probs": tf.nn.softmax(model(x, training=False), axis=-1)}

    tmp = path.with_name(f".{path.name}.tmp")
    with quiet_native_stderr():
        tf2onnx.convert.from_function(forward, input_signature=spec, opset=17, output_path=str(tmp))
    import onnxruntime as ort

    x = check[..., None].astype(np.float32) / 255.0
    session = ort.InferenceSession(str(tmp), providers=["CPUExecutionProvider"])
    diff = float(np.abs(session.run(None, {"input": x})[0] - forward(x)["probs"].numpy()).max())
    if diff > PARITY_TOLERANCE:
        tmp.unlink(missing_ok=True)
        raise ModelError(f"line model ONNX export differs from Keras by {diff:.2e}; not written")
    os.replace(tmp, path)
    return {
        "file": path.name,
        "sha256": file_sha256(path),
        "opset": 17,
        "parity_max_abs_diff": diff,
    }
