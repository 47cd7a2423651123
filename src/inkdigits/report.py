"""Write an evaluation's files: metrics.json, CSV, PNGs and one self-contained report.html.

The HTML embeds every picture as a data URI and uses no external resource, so
it opens from disk with no network and can be mailed as one file.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import json
from pathlib import Path
from typing import Any

import numpy as np

from . import evaluation as ev_mod
from . import plots
from .config import write_json_atomic

MAX_MISCLASSIFIED = 100
SAMPLES = 30
SALIENCY_EACH = 8  # correct and wrong digits in the saliency figure


def _write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    tmp.replace(path)


def confusion_csv(cm: np.ndarray, path: Path) -> None:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["true\\predicted", *range(10)])
    for d in range(10):
        w.writerow([d, *cm[d].tolist()])
    _write_text(path, buf.getvalue())


def saliency(ev: ev_mod.Evaluation) -> tuple[np.ndarray, np.ndarray, list[str], np.ndarray, str]:
    """Heat maps for a few correct and the most confidently wrong digits."""
    from . import explain

    preds, conf = ev.preds, ev.calibrated.max(axis=1)
    wrong_idx = np.flatnonzero(preds != ev.labels)
    wrong_idx = wrong_idx[np.argsort(-conf[wrong_idx])][:SALIENCY_EACH]
    right_idx = np.flatnonzero(preds == ev.labels)
    right_idx = np.random.default_rng(1).choice(
        right_idx, size=min(SALIENCY_EACH, len(right_idx)), replace=False
    )
    idx = np.concatenate([right_idx, wrong_idx]).astype(np.int64)
    images, classes = ev.images[idx], preds[idx]
    if ev.predictor.keras_model is not None:
        x = (images.astype(np.float32) / 255.0)[..., None]
        maps, method = explain.gradcam(ev.predictor.keras_model, x, classes), "Grad-CAM"
    else:
        maps = explain.occlusion(ev.predictor.predict, images, classes)
        method = "occlusion sensitivity (ONNX model; Grad-CAM needs a Keras model)"
    captions = [f"{ev.labels[i]} read as {preds[i]}" for i in idx]
    return images, maps, captions, preds[idx] != ev.labels[idx], method


def write_all(
    ev: ev_mod.Evaluation,
    out: Path,
    command: str,
    curves_rows: list[dict[str, Any]] | None = None,
) -> dict[str, Path]:
    """Write every evaluation file into ``out``; returns name -> path."""
    out.mkdir(parents=True, exist_ok=True)
    files: dict[str, Path] = {}
    r = ev.results
    title = f"{ev.predictor.name} on MNIST {ev.split} ({r['images']:,} digits)"
    write_json_atomic(out / "metrics.json", r)
    files["metrics.json"] = out / "metrics.json"

    cm = ev_mod.confusion_matrix(ev.labels, ev.preds)
    files["confusion_matrix.png"] = plots.confusion_matrix_png(
        cm, out / "confusion_matrix.png", title
    )
    confusion_csv(cm, out / "confusion_matrix.csv")
    files["confusion_matrix.csv"] = out / "confusion_matrix.csv"

    if curves_rows:
        files["curves.png"] = plots.curves_png(curves_rows, out / "curves.png", ev.predictor.name)

    conf = ev.calibrated.max(axis=1)
    wrong = np.flatnonzero(ev.preds != ev.labels)
    wrong = wrong[np.argsort(-conf[wrong])][:MAX_MISCLASSIFIED]  # most confident mistakes first
    caps = [f"{ev.labels[i]}→{ev.preds[i]} {100 * conf[i]:.0f}%" for i in wrong]
    shown = "all" if len(wrong) == r["errors"] else f"the {len(wrong)} most confident"
    files["misclassified.png"] = plots.digit_grid_png(
        ev.images[wrong], caps, out / "misclassified.png",
        f"misclassified: {shown} of {r['errors']} (true→read, confidence)",
        wrong=np.ones(len(wrong), bool),
    )  # fmt: skip

    pick = np.random.default_rng(0).choice(
        len(ev.labels), size=min(SAMPLES, len(ev.labels)), replace=False
    )
    caps = [f"{ev.preds[i]} ({100 * conf[i]:.1f}%)" for i in pick]
    files["samples.png"] = plots.digit_grid_png(
        ev.images[pick], caps, out / "samples.png", "random digits: read (confidence)",
        wrong=ev.preds[pick] != ev.labels[pick],
    )  # fmt: skip

    files["reliability.png"] = plots.reliability_png(
        ev_mod.reliability(ev.probs, ev.labels),
        ev_mod.reliability(ev.calibrated, ev.labels),
        r["ece"], r["ece_calibrated"], ev.temperature, out / "reliability.png",
    )  # fmt: skip

    images, maps, caps, is_wrong, method = saliency(ev)
    files["gradcam.png"] = plots.saliency_png(
        images, maps, caps, is_wrong, out / "gradcam.png", method
    )

    _write_text(out / "report.html", render_html(ev, files, command))
    files["report.html"] = out / "report.html"
    return files


# --------------------------------------------------------------------------- HTML

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#1d2330;background:#f5f6f8}
main{max-width:1100px;margin:0 auto;padding:24px}
h1{font-size:1.6rem;margin:.2rem 0} h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #dde;padding-bottom:.3rem}
.cards{display:flex;flex-wrap:wrap;gap:12px;margin:16px 0}
.card{background:white;border-radius:10px;padding:12px 16px;box-shadow:0 1px 3px rgba(0,0,0,.08);min-width:140px}
.card b{display:block;font-size:1.5rem} .card span{color:#667;font-size:.85rem}
table{border-collapse:collapse;background:white;font-size:.9rem} td,th{padding:4px 10px;border-bottom:1px solid #eee;text-align:right}
th{background:#eef0f4} td:first-child,th:first-child{text-align:left}
img{max-width:100%;background:white;border-radius:8px;box-shadow:0 1px 3px rgba(0,0,0,.08)}
pre{background:#1d2330;color:#e8eaf0;padding:12px;border-radius:8px;overflow:auto;font-size:.8rem}
code{background:#e8eaf0;padding:1px 4px;border-radius:4px}
"""


def _img(path: Path, alt: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def _pct(v: float) -> str:
    return f"{100 * v:.2f}%"


def _summary_rows(r: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    rows = [("single model", r)]
    for key, name in (("tta", "test-time augmentation"), ("ensemble", "ensemble"),
                      ("ensemble_tta", "ensemble + TTA")):  # fmt: skip
        if key in r:
            rows.append((name, r[key]))
    return rows


def render_html(ev: ev_mod.Evaluation, files: dict[str, Path], command: str) -> str:
    r = ev.results
    esc = html.escape
    cards = "".join(
        f'<div class="card"><b>{v}</b><span>{esc(k)}</span></div>'
        for k, v in (
            ("accuracy", _pct(r["accuracy"])),
            ("errors", f"{r['errors']} of {r['images']:,}"),
            ("log loss", f"{r['log_loss']:.4f}"),
            ("ECE raw → calibrated", f"{100 * r['ece']:.2f}% → {100 * r['ece_calibrated']:.2f}%"),
            ("temperature", f"{r['temperature']:.3f}"),
            ("throughput", f"{r['throughput_per_s']:,.0f}/s" if r["throughput_per_s"] else "n/a"),
        )
    )
    summary = "".join(
        f"<tr><td>{esc(name)}</td><td>{_pct(m['accuracy'])}</td><td>{m['errors']}</td>"
        f"<td>{m['log_loss']:.4f}</td><td>{100 * m['ece']:.2f}%</td></tr>"
        for name, m in _summary_rows(r)
    )
    per_class = "".join(
        f"<tr><td>{c['digit']}</td><td>{_pct(c['precision'])}</td><td>{_pct(c['recall'])}</td>"
        f"<td>{_pct(c['f1'])}</td><td>{c['support']}</td></tr>"
        for c in r["per_class"]
    )
    sections = [
        ("Confusion matrix", "confusion_matrix.png"),
        ("Training curves", "curves.png"),
        ("Misclassified digits", "misclassified.png"),
        ("Sample predictions", "samples.png"),
        ("Calibration", "reliability.png"),
        ("Where the model looks", "gradcam.png"),
    ]
    figures = "".join(
        f"<h2>{esc(title)}</h2>{_img(files[name], title)}"
        for title, name in sections
        if name in files
    )
    card = json.dumps(ev.predictor.card, indent=2) if ev.predictor.card else "(no model card)"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>inkdigits evaluation: {esc(ev.predictor.name)}</title><style>{CSS}</style></head>
<body><main>
<h1>{esc(ev.predictor.name)} on MNIST {esc(ev.split)}</h1>
<div>model <code>{esc(str(ev.predictor.path))}</code></div>
<div class="cards">{cards}</div>
<h2>Summary</h2>
<table><tr><th></th><th>accuracy</th><th>errors</th><th>log loss</th><th>ECE</th></tr>{summary}</table>
<h2>Per digit</h2>
<table><tr><th>digit</th><th>precision</th><th>recall</th><th>F1</th><th>support</th></tr>{per_class}</table>
{figures}
<h2>Model card</h2><pre>{esc(card)}</pre>
<h2>Produced by</h2><pre>{esc(command)}</pre>
</main></body></html>
"""


def summary_table(r: dict[str, Any]) -> str:
    """The short terminal table `inkdigits evaluate` prints."""
    lines = [f"{'':24s} {'accuracy':>9s} {'errors':>7s} {'log loss':>9s} {'ECE':>7s}"]
    for name, m in _summary_rows(r):
        lines.append(
            f"{name:24s} {100 * m['accuracy']:8.2f}% {m['errors']:7d} {m['log_loss']:9.4f} "
            f"{100 * m['ece']:6.2f}%"
        )
    lines.append(
        f"calibrated (T={r['temperature']:.3f})   ECE {100 * r['ece']:.2f}% -> "
        f"{100 * r['ece_calibrated']:.2f}%"
    )
    return "\n".join(lines)
