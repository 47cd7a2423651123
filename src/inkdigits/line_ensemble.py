"""Several line models joined into one: their per-step probabilities multiplied.

Two line models trained apart (a line-cnn and a line-rnn) misread different
lines; reading each step with the weighted geometric mean of their
probabilities (normalised over the ten digits and the blank) reads more
lines right than either (docs/BENCHMARKS.md, session 25). Both networks go
into one ONNX graph with the one input the Reader gives a line model, so
reading with the joint model is reading with any line model (``LineModel``).
The members must mark digits at the same steps (CTC spikes: their cards'
``spike_offset`` within MAX_SPIKE_SPREAD steps), or the product would
multiply one model's digit by the other's blank.

    inkdigits line-ensemble runs/train/line/model.onnx runs/train/line-rnn/model.onnx \\
        --out runs/train/line-ensemble
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from .classifier import load_card
from .errors import ConfigError, ModelError
from .extra import file_sha256
from .lines import BLANK, LINE_HEIGHT, PAD_TO, STEP, LineModel, check_fusion

MAX_SPIKE_SPREAD = 0.5  # steps
FLOOR = 1e-9  # probabilities are floored before their logarithm
PARITY_TOLERANCE = 1e-5


def geometric_mean(probs: list[np.ndarray], weights: list[float]) -> np.ndarray:
    """Each step's weighted geometric mean of the members' probabilities, normalised
    (what the joint graph computes; the reference its export is checked against)."""
    logs = sum(w * np.log(np.maximum(p, FLOOR)) for p, w in zip(probs, weights, strict=True))
    logs = logs - logs.max(axis=-1, keepdims=True)
    out = np.exp(logs)
    return out / out.sum(axis=-1, keepdims=True)


def join(
    members: list[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    weights: list[float] | None = None,
    fusion: dict[str, float] | None = None,
) -> dict[str, Any]:
    """Write ``out/model.onnx`` (the members in one graph) and its card; return the card.

    ``weights`` (default: equal) must be positive; they are normalised to sum
    to 1. ``fusion``: how the Reader weighs the joint model against the digit
    classifier (as ``train-line --fusion``; default: the first member's).
    """
    import onnx
    from onnx import TensorProto, compose, helper

    if len(members) < 2:
        raise ConfigError("give at least two line models to join")
    weights = [1.0] * len(members) if weights is None else list(weights)
    if len(weights) != len(members):
        raise ConfigError(f"{len(weights)} weights for {len(members)} line models")
    if not all(np.isfinite(w) and w > 0 for w in weights):
        raise ConfigError(f"weights must be positive numbers, not {weights}")
    weights = [w / sum(weights) for w in weights]
    check_fusion(fusion)
    target = (Path(out) / "model.onnx").resolve()
    if any(Path(m).resolve() == target for m in members):
        raise ConfigError(f"--out {out}: would overwrite one of the line models it joins")
    loaded = [LineModel(m) for m in members]  # checks each file and its card
    offsets = [m.spike_offset for m in loaded]
    if max(offsets) - min(offsets) > MAX_SPIKE_SPREAD:
        raise ModelError(
            f"the line models mark digits at different steps (spike offsets {offsets}); "
            "their per-step probabilities cannot be multiplied"
        )

    nodes, initializers, value_info, logs, outputs = [], [], [], [], []
    first = onnx.load(str(loaded[0].path))  # its opset and IR version are the joint's
    for k, (m, w) in enumerate(zip(loaded, weights, strict=True)):
        model = first if k == 0 else onnx.load(str(m.path))
        graph = compose.add_prefix(model, f"m{k}/").graph
        (inp,), (outp,) = graph.input, graph.output
        outputs.append(outp.name)
        for node in graph.node:  # every member reads the one input
            for i, name in enumerate(node.input):
                if name == inp.name:
                    node.input[i] = "input"
            nodes.append(node)
        initializers += list(graph.initializer)
        value_info += list(graph.value_info)
        floor = f"m{k}/floor"
        weight = f"m{k}/weight"
        initializers += [
            helper.make_tensor(floor, TensorProto.FLOAT, [], [FLOOR]),
            helper.make_tensor(weight, TensorProto.FLOAT, [], [w]),
        ]
        nodes += [
            helper.make_node("Max", [outp.name, floor], [f"m{k}/floored"]),
            helper.make_node("Log", [f"m{k}/floored"], [f"m{k}/log"]),
            helper.make_node("Mul", [f"m{k}/log", weight], [f"m{k}/weighted"]),
        ]
        logs.append(f"m{k}/weighted")
    nodes += [
        helper.make_node("Sum", logs, ["joint/logits"]),
        helper.make_node("Softmax", ["joint/logits"], ["probs"], axis=-1),
    ]
    graph = helper.make_graph(
        nodes,
        "line-ensemble",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", LINE_HEIGHT, "W", 1])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["N", "T", BLANK + 1])],
        initializers,
        value_info=value_info,
    )
    joint = helper.make_model(graph, opset_imports=list(first.opset_import))
    joint.ir_version = first.ir_version
    onnx.checker.check_model(joint)

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "model.onnx"
    tmp = out / ".model.onnx.tmp"
    onnx.save(joint, str(tmp))
    diff = _parity(tmp, loaded, weights)
    if diff > PARITY_TOLERANCE:
        tmp.unlink(missing_ok=True)
        raise ModelError(f"the joint graph differs from its members by {diff:.2e}; not written")
    os.replace(tmp, path)
    card = {
        "kind": "line",
        "architecture": "line-ensemble",
        "input": {
            "height": LINE_HEIGHT,
            "step": STEP,
            "blank": BLANK,
            "spike_offset": round(float(np.dot(weights, offsets)), 2),
        },
        "ensemble": {
            "how": "each step: the members' probabilities' weighted geometric mean, normalised",
            "weights": weights,
            "members": [
                {"file": str(m.path), "sha256": file_sha256(m.path), "output": o, "card": m.card}
                for m, o in zip(loaded, outputs, strict=True)
            ],
        },
        "onnx": {
            "file": path.name,
            "sha256": file_sha256(path),
            "opset": next(o.version for o in joint.opset_import if o.domain in ("", "ai.onnx")),
            "parity_max_abs_diff": diff,
        },
    }
    chosen = fusion if fusion is not None else loaded[0].card.get("fusion")
    if chosen:
        card["fusion"] = dict(chosen)
    (out / "card.json").write_text(json.dumps(card, indent=2))
    return card


def _parity(path: Path, members: list[LineModel], weights: list[float]) -> float:
    """Largest difference between the joint graph and its members joined in numpy,
    on random views of a few widths."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    diff = 0.0
    for width in (2 * PAD_TO, 5 * PAD_TO, 9 * PAD_TO):
        view = rng.random((LINE_HEIGHT, width), dtype=np.float32)
        got = session.run(None, {"input": view[None, :, :, None]})[0][0]
        parts = [m.probabilities([view])[0] for m in members]
        diff = max(diff, float(np.abs(got - geometric_mean(parts, weights)).max()))
    return diff


def extract_member(path: str | os.PathLike[str], architecture: str, out: Path) -> Path:
    """Write to ``out`` the first member of the joint model ``path`` that is an
    ``architecture`` line model, as a graph of its own (what its own export
    computes); return ``out``. Lets ``train-line --init-from`` start from it."""
    import onnx.utils

    path = Path(path)
    members = load_card(path).get("ensemble", {}).get("members", [])
    kinds = [m.get("card", {}).get("architecture") for m in members]
    if architecture not in kinds:
        raise ModelError(
            f"{path}: no {architecture} among its members ({', '.join(map(str, kinds))})"
        )
    k = kinds.index(architecture)
    onnx.utils.extract_model(str(path), str(out), ["input"], [members[k]["output"]])
    return out
