"""The ``inkdigits`` command line: thin subcommands over the library.

Each subcommand's help text is its handler's docstring. Errors the user can act
on are printed as one line on stderr with a non-zero exit; ``--debug`` shows
the traceback instead.
"""

from __future__ import annotations

import argparse
import inspect
import math
import os
import shlex
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from . import __version__
from .errors import ConfigError, InkdigitsError

EXIT_ERROR = 1  # a user-actionable failure (bad data, bad model file, ...)
EXIT_USAGE = 2  # bad command-line usage (argparse's convention)


class _Parser(argparse.ArgumentParser):
    """argparse that exits with a one-line message (no usage dump) on bad values."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def _doc(fn: Callable) -> tuple[str, str]:
    doc = inspect.getdoc(fn) or ""
    return doc.split("\n", 1)[0], doc


DATA_DIR_HELP = "MNIST folder (default: INKDIGITS_DATA_DIR, then the cache)"


def _subcommand(
    sub: argparse._SubParsersAction, name: str, fn: Callable
) -> argparse.ArgumentParser:
    """A subcommand whose help and description come from ``fn``'s docstring."""
    short, doc = _doc(fn)
    p = sub.add_parser(
        name, help=short, description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.set_defaults(func=fn)
    return p


def positive_int(text: str, least: int = 1) -> int:
    """argparse type: an integer >= ``least`` (1 unless given)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < least:
        raise argparse.ArgumentTypeError(f"must be >= {least}, got {value}")
    return value


def count_or_zero(text: str) -> int:
    """argparse type: an integer >= 0."""
    return positive_int(text, least=0)


def positive_float(text: str) -> float:
    """argparse type: a float > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {value}")
    return value


def probability(text: str) -> float:
    """argparse type: a number in [0, 1]."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must lie in [0, 1], got {value}")
    return value


# --------------------------------------------------------------------------- data


def cmd_data(args: argparse.Namespace) -> int:
    """Show, verify or download the MNIST data.

    info      where the data is, each file's SHA-256 and the label histograms
    verify    check the four files against the pinned SHA-256 checksums
    download  fetch the files from the public mirrors into --data-dir (default: the cache)
    """
    from . import data

    if args.action == "download":
        target = Path(args.data_dir) if args.data_dir else data.cache_dir()
        d = data.download(target, mirrors=args.mirror or data.MIRRORS, progress=sys.stderr.isatty())
        for check in data.verify_dir(d):
            print(check.message())
        return 0

    d = data.find_data_dir(args.data_dir)
    if d is None:
        raise InkdigitsError(
            "MNIST not found (looked in "
            + ", ".join(f"{p} [{why}]" for why, p in data.candidate_dirs(args.data_dir))
            + "); run `inkdigits data download`"
        )
    if args.action == "verify":
        checks = data.verify_dir(d)
        for check in checks:
            print(check.message(), file=sys.stdout if check.ok else sys.stderr)
        bad = [c for c in checks if not c.ok]
        if bad:
            raise InkdigitsError(f"{len(bad)} of {len(checks)} MNIST files failed verification")
        print(f"all {len(checks)} MNIST files verified in {d}")
        return 0

    # info
    print(f"data folder: {d}")
    for check in data.verify_dir(d):
        print(f"  {check.message()}")
    mnist = data.load_mnist(d, download_if_missing=False, verify=False)
    for split, labels in (("train", mnist.train_labels), ("test", mnist.test_labels)):
        hist = " ".join(f"{k}:{v}" for k, v in data.label_histogram(labels).items())
        print(f"{split:5s} {len(labels):6d} images  {hist}")
    return 0


def _add_data(sub: argparse._SubParsersAction) -> None:
    p = _subcommand(sub, "data", cmd_data)
    p.add_argument("action", choices=["info", "verify", "download"])
    p.add_argument("--data-dir", help="folder with the MNIST files (overrides INKDIGITS_DATA_DIR)")
    p.add_argument(
        "--mirror",
        action="append",
        metavar="URL",
        help="download from this mirror instead of the built-in list (repeatable)",
    )


# --------------------------------------------------------------------------- train


def cmd_train(args: argparse.Namespace) -> int:
    """Train a CNN on MNIST and export it to ONNX with a model card.

    Writes config.json, metrics.csv, best.keras, checkpoint.keras, model.onnx
    and card.json into --out. Options left out take the model's recipe (see
    --list-models). Interrupt at any time and continue with --resume --out DIR.
    """
    if args.list_models:
        from .models import REGISTRY

        for spec in REGISTRY.values():
            r = spec.recipe
            print(
                f"{spec.name:14s} {spec.params:>9,d} params  {r.epochs:3d} epochs  "
                f"batch {r.batch_size:4d}  {r.optimizer}/{r.schedule}  "
                f"augment {'yes' if r.augment else 'no':3s}  "
                f"{spec.description}"
            )
        return 0
    from .config import TrainConfig

    overrides = {
        k: getattr(args, k)
        for k in (
            "model",
            "epochs",
            "batch_size",
            "lr",
            "seed",
            "label_smoothing",
            "precision",
            "patience",
            "train_subset",
            "augment",
            "stroke",
            "elastic",
            "warp",
            "extra_digits",
            "extra_repeat",
            "init_from",
            "data_dir",
            "threads",
            "teachers",
            "distill_views",
            "distill_temperature",
        )
    }
    for k in ("extra_digits", "extra_repeat"):  # one file stays a plain value in config.json
        if isinstance(overrides[k], list) and len(overrides[k]) == 1:
            overrides[k] = overrides[k][0]
    if args.resume:
        given = [k for k, v in overrides.items() if v is not None and k != "data_dir"]
        if given:
            raise ConfigError(
                "--resume continues a run with its own config.json; drop "
                + ", ".join("--" + k.replace("_", "-") for k in given)
            )
        if not args.out:
            raise ConfigError("--resume needs --out DIR (the run to continue)")
    cfg = TrainConfig(**{k: v for k, v in overrides.items() if v is not None})
    out = Path(args.out) if args.out else Path("runs") / f"{cfg.model}-{_timestamp()}"
    if not args.resume:
        cfg.validate()
        from .models import get_spec

        spec = get_spec(cfg.model)  # unknown names fail here, before TensorFlow starts
        if cfg.teachers:
            from .classifier import load_teachers

            load_teachers(cfg.teachers, spec.classes)  # before TensorFlow and the folder
    from . import training

    training.train(cfg, out, resume=args.resume)
    return 0


def _timestamp() -> str:
    from datetime import datetime

    return datetime.now().strftime("%Y%m%d-%H%M%S")


def _add_train(sub: argparse._SubParsersAction) -> None:
    p = _subcommand(sub, "train", cmd_train)
    p.add_argument("--list-models", action="store_true", help="list the registered models")
    p.add_argument("--model", help="registered model name (default: inkdigits-cnn)")
    p.add_argument("--epochs", type=positive_int, help="epochs (default: the recipe's)")
    p.add_argument("--batch-size", type=positive_int, help="batch size (default: the recipe's)")
    p.add_argument("--lr", type=positive_float, help="peak learning rate (default: the recipe's)")
    p.add_argument("--seed", type=int, help="random seed (default: 0)")
    p.add_argument("--label-smoothing", type=float, help="label smoothing in [0, 1)")
    p.add_argument("--precision", choices=["auto", "float32", "mixed_bfloat16"])
    p.add_argument("--patience", type=positive_int, help="early-stopping patience in epochs")
    p.add_argument("--train-subset", type=positive_int, help="train on the first N images only")
    p.add_argument(
        "--augment", action=argparse.BooleanOptionalAction, help="training augmentation on/off"
    )
    p.add_argument(
        "--stroke", type=float, help="pen-width augmentation in [0, 1] (default: the recipe's)"
    )
    p.add_argument(
        "--elastic",
        type=float,
        help="elastic distortion in [0, 2], 1 = Simard et al.'s (default: the recipe's)",
    )
    p.add_argument(
        "--warp",
        type=float,
        help="affine warp strength in [0, 2], 1 = ±10° rotation, ±10%% scale and shift, "
        "±0.15 shear (default: the recipe's)",
    )
    p.add_argument(
        "--extra-digits",
        metavar="NPZ",
        nargs="+",
        help="extra labelled digits, one or more files (from `inkdigits crops` or "
        "`inkdigits render-digits`)",
    )
    p.add_argument(
        "--extra-repeat",
        type=positive_int,
        nargs="+",
        metavar="N",
        help="times each extra digit is used per epoch: one N for all files, or one per file",
    )
    p.add_argument(
        "--init-from",
        metavar="MODEL",
        help="start from these weights (fine-tune): a .keras run, or the float32 .onnx export "
        "of the same architecture (a shipped model.onnx)",
    )
    p.add_argument("--threads", type=positive_int, help="CPU threads (default: all)")
    p.add_argument(
        "--teachers",
        nargs="+",
        metavar="ONNX",
        help="distil: learn these models' averaged probabilities on augmented training "
        "images instead of the labels",
    )
    p.add_argument(
        "--distill-views",
        type=positive_int,
        help="distillation: augmented copies of each training image (default: 10)",
    )
    p.add_argument(
        "--distill-temperature",
        type=positive_float,
        help="distillation: soften the teachers' probabilities by T (default: 2)",
    )
    p.add_argument("--data-dir", help=DATA_DIR_HELP)
    p.add_argument("--out", help="run folder (default: runs/MODEL-TIMESTAMP)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out")


# --------------------------------------------------------------------------- evaluate


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Evaluate a model on MNIST and write metrics, plots and one report.html.

    --model takes a run folder, a .keras file or an .onnx file (default: the
    shipped model). Writes metrics.json, confusion_matrix.png/.csv, curves.png
    (run folders), misclassified.png, samples.png, reliability.png,
    gradcam.png and report.html into --out. --compare RUN_DIR ... instead writes
    one table of several runs (compare.md and compare.csv).
    """
    from . import data, evaluation, report

    if not args.compare:  # a wrong or broken model is reported before MNIST is loaded
        pred = evaluation.load_predictor(args.model)
        members = [evaluation.load_predictor(p) for p in args.ensemble or []]
    mnist = data.load_mnist(args.data_dir)
    splits = mnist.split()
    out = Path(args.out)
    if args.compare:
        rows = evaluation.compare_runs(args.compare, splits.x_test, splits.y_test)
        out.mkdir(parents=True, exist_ok=True)
        md = evaluation.compare_markdown(rows)
        (out / "compare.md").write_text(md)
        _write_csv(out / "compare.csv", evaluation.COMPARE_FIELDS, rows)
        print(md, end="")
        print(f"written {out / 'compare.md'} and {out / 'compare.csv'}")
        return 0

    if args.split == "test":
        images, labels, val = splits.x_test, splits.y_test, (splits.x_val, splits.y_val)
    else:  # evaluating on validation: never fit the temperature on the same digits
        images, labels, val = splits.x_val, splits.y_val, None
    if args.calibrate:
        cal = evaluation.calibration_record(pred.predict(splits.x_val), splits.y_val)
        card_path = evaluation.write_calibration(pred, cal)
        print(
            f"temperature {cal['temperature']:.4f} fitted on validation (ECE "
            f"{100 * cal['val_ece_before']:.2f}% -> {100 * cal['val_ece_after']:.2f}%), "
            f"stored in {card_path}"
        )
    ev = evaluation.evaluate(
        pred, images, labels, split=args.split, val=val, tta=args.tta, ensemble=members
    )
    curves = None
    metrics_csv = (pred.run_dir or pred.path.parent) / "metrics.csv"
    if metrics_csv.is_file():
        from .training import read_metrics

        curves = read_metrics(metrics_csv)
    files = report.write_all(ev, out, args.command_line, curves)
    print(report.summary_table(ev.results))
    print(f"wrote {len(files)} files; open {files['report.html']}")
    return 0


def _write_csv(path: Path, fields: list[str], rows: list[dict]) -> None:
    import csv

    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=fields)
        w.writeheader()
        w.writerows(rows)


def _add_evaluate(sub: argparse._SubParsersAction) -> None:
    p = _subcommand(sub, "evaluate", cmd_evaluate)
    p.add_argument(
        "--model",
        help="run folder, .keras or .onnx, or `checks` (default: the shipped model)",
    )
    p.add_argument("--data-dir", help=DATA_DIR_HELP)
    p.add_argument("--split", choices=["test", "val"], default="test")
    p.add_argument("--tta", action="store_true", help="also report test-time augmentation")
    p.add_argument("--ensemble", nargs="+", metavar="PATH", help="average with these models too")
    p.add_argument(
        "--calibrate",
        action="store_true",
        help="fit the temperature on the validation split and store it in the model card",
    )
    p.add_argument("--compare", nargs="+", metavar="RUN_DIR", help="compare finished runs")
    p.add_argument("--out", default="out/evaluate", help="output folder (default: out/evaluate)")


# --------------------------------------------------------------------------- read

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".pgm", ".ppm"}


def expand_inputs(items: Sequence[str]) -> list[Path]:
    """Files as given, folders as their image files, glob patterns expanded; sorted per item."""
    import glob

    out: list[Path] = []
    for item in items:
        p = Path(item)
        if p.is_dir():
            out.extend(sorted(f for f in p.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES))
        elif any(ch in item for ch in "*?[") and not p.exists():
            matches = sorted(glob.glob(item, recursive=True))
            out.extend(Path(m) for m in matches) if matches else out.append(p)
        else:
            out.append(p)
    return out


def cmd_read(args: argparse.Namespace) -> int:
    """Read handwritten digits or numbers from images, folders or glob patterns.

    One line per image (file, what was read, confidence), or one JSON object
    per image with --json. A file that cannot be read is reported and the run
    goes on; the exit code is 1 if any file failed.
    """
    import json

    from tqdm import tqdm

    from ._memory import tune_memory
    from .preprocessing import ImageError, load_image
    from .reader import Reader, line_model_option

    tune_memory()
    line_model = line_model_option(args.line_model)
    reader = Reader(args.model, min_confidence=args.min_confidence, line_model=line_model)
    files = expand_inputs(args.inputs)
    if not files:
        raise InkdigitsError("no images found in " + " ".join(args.inputs))
    failed = 0
    bar = tqdm(files, unit="img", file=sys.stderr, disable=None if len(files) > 1 else True)
    for path in bar:
        try:
            rgb = load_image(path, reader.max_pixels)
            result = reader.read(rgb, args.mode)
            if args.annotate:
                from .annotate import write_annotated

                write_annotated(rgb, result, Path(args.annotate) / f"{path.stem}.annotated.png")
        except (ImageError, OSError) as exc:
            failed += 1
            msg = str(exc).replace(f"{path}: ", "")
            line = (
                json.dumps({"file": str(path), "error": msg})
                if args.json
                else f"{path}: error: {msg}"
            )
            tqdm.write(line, file=sys.stdout)
            continue
        tqdm.write(_format_result(path, result, args.json), file=sys.stdout)
    bar.close()
    if failed:
        print(f"inkdigits: {failed} of {len(files)} files could not be read", file=sys.stderr)
        return EXIT_ERROR
    return 0


def percent(p: float) -> str:
    """A probability as a percentage with one decimal, more when one would round
    a value under 1 up to 100.0% (a digit read 99.987% sure, set aside at 99.99%)."""
    from .reader import decimals_apart

    d = decimals_apart(100 * p, 100.0, least=1) if p < 1.0 else 1
    return f"{100 * p:.{d}f}%"


def _format_result(path: Path, result, as_json: bool) -> str:
    import json

    from .reader import DigitResult

    if isinstance(result, DigitResult):
        if as_json:
            return json.dumps({"file": str(path), "mode": "digit", **result.to_dict()})
        why = f" ({result.reason})" if result.reason else ""
        return f"{path}: {result.text}  confidence {percent(result.confidence)}{why}"
    if as_json:
        return json.dumps({"file": str(path), "mode": "number", **result.to_dict()})
    if not result.digits:
        return f"{path}: ? ({result.reason})"
    return f"{path}: {result.text}  confidence {percent(result.confidence)}"


def _add_read(sub: argparse._SubParsersAction) -> None:
    p = _subcommand(sub, "read", cmd_read)
    p.add_argument("inputs", nargs="+", metavar="IMAGE|DIR|GLOB")
    _read_options(p, default_mode="auto")


def _read_options(p: argparse.ArgumentParser, default_mode: str) -> None:
    p.add_argument(
        "--mode",
        choices=["digit", "number", "auto"],
        default=default_mode,
        help=f"one digit, a number, or decide from the image (default: {default_mode})",
    )
    p.add_argument("--json", action="store_true", help="one JSON object per image")
    p.add_argument("--annotate", metavar="OUT_DIR", help="write annotated copies here")
    p.add_argument(
        "--min-confidence",
        type=probability,
        default=0.5,
        metavar="P",
        help="report digits below this calibrated confidence as ? (default 0.5)",
    )
    p.add_argument(
        "--model",
        help="an .onnx model with its card.json, or `checks`: the shipped model tuned on "
        "check amounts (default: the shipped model)",
    )
    p.add_argument(
        "--line-model",
        metavar="ONNX|none",
        help="the line model that also reads each line of a number whole (an .onnx from "
        "`inkdigits train-line`), or `none` to read digit by digit only (default: the one "
        "shipped with --model)",
    )


def cmd_predict(args: argparse.Namespace) -> int:
    """Read the digit in one image (the original project's `predict.py --image PATH`)."""
    args.inputs = [args.image]
    return cmd_read(args)


def _add_predict(sub: argparse._SubParsersAction) -> None:
    p = _subcommand(sub, "predict", cmd_predict)
    p.add_argument("--image", required=True, help="the image file")
    _read_options(p, default_mode="digit")


# --------------------------------------------------------------------------- demo


def cmd_demo(args: argparse.Namespace) -> int:
    """Read MNIST test digits with the shipped model and write an annotated grid PNG."""
    from .demo import run_demo

    result = run_demo(args.out, count=args.count, seed=args.seed, data_dir=args.data_dir)
    for label, pred, conf in zip(
        result.labels, result.predictions, result.confidences, strict=True
    ):
        mark = "ok   " if label == pred else "WRONG"
        print(f"  {mark} true {label}  read {pred}  confidence {percent(conf):>8}")
    print(f"read {len(result.labels)} MNIST test digits, {result.correct} correct")
    print(f"grid written to {result.grid_path}")
    if args.examples:
        from .demo import read_examples

        print(f"\nreading the example images in {args.examples}:")
        for ex in read_examples(args.examples, args.out):
            want = f"  (written: {ex.expected})" if ex.expected is not None else ""
            conf = f"confidence {percent(ex.confidence):>8}"
            print(f"  {ex.file.name:24s} read {ex.read:12s} {conf}{want}")
        print(f"annotated copies written to {args.out}/")
    return 0


def _add_demo(sub: argparse._SubParsersAction) -> None:
    p = _subcommand(sub, "demo", cmd_demo)
    p.add_argument("--out", default="out/demo", help="output folder (default: out/demo)")
    p.add_argument("--count", type=positive_int, default=20, help="digits to read (default 20)")
    p.add_argument("--seed", type=int, default=0, help="which random digits (default 0)")
    p.add_argument("--examples", metavar="DIR", help="also read the images in DIR, annotated")
    p.add_argument("--data-dir", help=DATA_DIR_HELP)


# --------------------------------------------------------------------------- crops


def cmd_crops(args: argparse.Namespace) -> int:
    """Cut labelled digit boxes (a boxes.json dataset) into MNIST-style crops for training.

    The crops are made by the reading pipeline itself (ink map, binarisation,
    MNIST geometry). The fixed held-out 30% of the images (by file-name hash)
    is left out unless --include-held-out. Train with them:
    inkdigits train --extra-digits OUT.npz --extra-repeat 5 --init-from runs/x/best.keras
    """
    from .extra import check_output, crops_from_boxes

    check_output(args.out)
    images, labels, files = crops_from_boxes(args.dataset, args.include_held_out)
    _save_digits(args.out, images, labels, f"{len(images)} digits from {len(set(files))} images")
    return 0


def _save_digits(out: str, images, labels, what: str) -> None:
    """Write labelled digits for `inkdigits train --extra-digits` and say what was written."""
    from .extra import save_crops

    save_crops(out, images, labels)
    counts = " ".join(f"{d}:{int((labels == d).sum())}" for d in range(10))
    print(f"{what} -> {out}  ({counts})")


def _add_crops(sub: argparse._SubParsersAction) -> None:
    p = _subcommand(sub, "crops", cmd_crops)
    p.add_argument("dataset", help="folder with boxes.json and the images it names")
    p.add_argument("--out", required=True, help="the .npz to write")
    p.add_argument(
        "--include-held-out", action="store_true", help="also use the held-out 30%% of images"
    )


# --------------------------------------------------------------------------- render-digits


def cmd_render_digits(args: argparse.Namespace) -> int:
    """Render MNIST training digits as photos and scans, cut out by the reading pipeline.

    Each digit is drawn by the benchmark's generator (paper, shadows, check
    patterns, blue ink, both polarities, thin and thick pens, blur, JPEG) from
    the training split only (never validation or test digits), then read back
    by the Reader's one-digit preprocessing. With --numbers, 2-10-digit
    numbers are drawn instead (spaced, close, touching) and cut apart by the
    Reader's number steps; the digits of each number found whole are kept.
    Train with them:
    inkdigits train --extra-digits OUT.npz --init-from runs/x/best.keras
    """
    from tqdm import tqdm

    from .data import load_mnist
    from .extra import check_output, rendered_digits

    check_output(args.out)  # before minutes of rendering
    s = load_mnist(args.data_dir).split()
    with tqdm(total=args.count, unit="img", file=sys.stderr, disable=None) as bar:
        images, labels = rendered_digits(
            s.x_train, s.y_train, args.count, args.seed, args.workers, bar.update, args.numbers
        )
    what = "digits cut from" if args.numbers else "of"
    _save_digits(
        args.out, images, labels, f"{len(images)} {what} {args.count} renders read as digits"
    )
    return 0


def _add_workers_and_data(p: argparse.ArgumentParser) -> None:
    """--workers and --data-dir, for the commands that render MNIST training digits."""
    p.add_argument(
        "--workers",
        type=positive_int,
        default=os.cpu_count() or 1,
        help="processes (default: one per core)",
    )
    p.add_argument("--data-dir", help=DATA_DIR_HELP)


def _add_render_digits(sub: argparse._SubParsersAction) -> None:
    p = _subcommand(sub, "render-digits", cmd_render_digits)
    p.add_argument("--out", required=True, help="the .npz to write")
    p.add_argument("--count", type=positive_int, default=20000, help="renders (default 20000)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument(
        "--numbers",
        action="store_true",
        help="render 2-10-digit numbers and keep the digits the Reader cuts out of them",
    )
    _add_workers_and_data(p)


# --------------------------------------------------------------------------- line-data


def cmd_line_data(args: argparse.Namespace) -> int:
    """Make training lines for the line model: numbers rendered and cut out by the Reader.

    Numbers of 1-10 MNIST training digits are drawn by the benchmark's
    generator (paper, shadows, check patterns, blue ink, both polarities,
    pens, rotation, blur, JPEG, spaced to touching, punctuation) and found by
    the Reader's own steps; each one found as a single line is kept as the
    line model sees it. With --digits CROPS.npz, the numbers are written with
    those labelled 28x28 digits instead (e.g. the crops `inkdigits crops`
    cuts from real check amounts). With --boxes DIR, the lines of a boxes
    dataset (ORAND-CAR-A's layout) outside its held-out 30% are made instead;
    with --boxes DIR --mix N, N new amounts per image in that image's own
    hand (its digits cut apart and redrawn in a new order, its marks kept).
    Train with them: inkdigits train-line --data OUT.npz ...
    """
    from tqdm import tqdm

    from .data import load_mnist
    from .extra import check_output, load_crops
    from .line_data import (
        RENDER_TALLEST,
        lines_from_boxes,
        mixed_lines_from_boxes,
        pack,
        rendered_lines,
        save_lines,
    )

    check_output(args.out)
    if args.boxes and args.digits:
        raise ConfigError(
            "--boxes and --digits do not go together: lines come from one or the other"
        )
    if args.mix and not args.boxes:
        raise ConfigError("--mix reshuffles a boxes dataset's digits: give --boxes DIR")
    if args.boxes and args.mix:
        views, texts = mixed_lines_from_boxes(args.boxes, args.mix, args.seed)
        what = f"{len(views)} reshuffled lines from {args.boxes}"
    elif args.boxes:
        views, texts = lines_from_boxes(args.boxes)
        what = f"{len(views)} lines from {args.boxes}"
    else:
        if args.digits:
            images, labels = load_crops(args.digits)
        else:
            s = load_mnist(args.data_dir).split()
            images, labels = s.x_train, s.y_train
        with tqdm(total=args.count, unit="img", file=sys.stderr, disable=None) as bar:
            views, texts = rendered_lines(
                images,
                labels,
                args.count,
                args.seed,
                args.workers,
                bar.update,
                check=args.check,
                pen=args.pen,
                tallest=args.tallest or RENDER_TALLEST,
            )
        what = f"{len(views)} of {args.count} renders found as one line"
    save_lines(args.out, pack(views, texts))
    print(f"{what} -> {args.out}")
    return 0


def _add_line_data(sub: argparse._SubParsersAction) -> None:
    p = _subcommand(sub, "line-data", cmd_line_data)
    p.add_argument("--out", required=True, help="the .npz to write")
    p.add_argument("--count", type=positive_int, default=50000, help="renders (default 50000)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--boxes", metavar="DIR", help="a boxes dataset's lines instead of renders")
    p.add_argument(
        "--mix",
        type=positive_int,
        metavar="N",
        help="with --boxes: N new lines per image, its digit strips redrawn in a random "
        "order between its own leading and trailing marks (seeded by --seed)",
    )
    p.add_argument(
        "--digits",
        metavar="NPZ",
        help="write the numbers with these labelled digits (`inkdigits crops`) instead of MNIST's",
    )
    p.add_argument(
        "--check",
        type=probability,
        default=0.0,
        metavar="SHARE",
        help="share of the renders written as check amounts: trailing 0s, small or raised "
        "last digits, thousands marks, a dash or '=' after, a '$' or tick before (default 0)",
    )
    p.add_argument(
        "--pen",
        choices=["thin", "default", "thicker", "broad"],  # synth.PENS
        help="draw every number with this pen, its digits at least 40 px tall (where pens "
        "show): more lines of a pen the line model reads badly (default: pens mixed)",
    )
    p.add_argument(
        "--tallest",
        type=positive_int,
        metavar="PX",
        help="the tallest digits rendered, in px (default 120; taller renders cost more "
        "and are scaled down to the same line height)",
    )
    _add_workers_and_data(p)


# --------------------------------------------------------------------------- train-line


def fusion_weight(text: str) -> tuple[str, float]:
    """argparse type: ``KEY=VALUE`` with a finite number for VALUE."""
    key, _, value = text.partition("=")
    try:
        number = float(value)
    except ValueError:
        number = float("nan")
    if not key.strip() or not math.isfinite(number):
        raise argparse.ArgumentTypeError(
            f"{text!r}: give KEY=VALUE with a number, e.g. count_penalty=-3"
        )
    return key.strip(), number


def cmd_train_line(args: argparse.Namespace) -> int:
    """Train a line model (reads a whole line of digits at once; CTC) and export it to ONNX.

    The run folder gets best.keras (the epoch with the best validation
    exact match), model.onnx and card.json. Read with it:
    inkdigits read --line-model OUT/model.onnx ...
    """
    from .line_training import train

    if args.repeat and len(args.repeat) != len(args.data):
        raise ConfigError("--repeat takes one count per --data file")
    spike_digits = None
    if args.spike_count:
        from .data import load_mnist

        s = load_mnist(args.data_dir).split()
        spike_digits = (s.x_train, s.y_train)
    train(
        args.data,
        args.out,
        val=args.val,
        repeat=args.repeat,
        epochs=args.epochs,
        lr=args.lr,
        seed=args.seed,
        init_from=args.init_from,
        augment=args.augment,
        architecture=args.architecture,
        fusion=dict(args.fusion or []),
        spike_digits=spike_digits,
        spike_count=args.spike_count,
        log=lambda m: print(m, flush=True),
    )
    return 0


def _add_train_line(sub: argparse._SubParsersAction) -> None:
    p = _subcommand(sub, "train-line", cmd_train_line)
    p.add_argument("--data", nargs="+", required=True, help="line-data .npz files")
    p.add_argument("--repeat", nargs="+", type=positive_int, help="times each file is used")
    p.add_argument("--val", help="validation lines (default: every 25th training line)")
    p.add_argument("--out", required=True, help="run folder")
    p.add_argument("--epochs", type=positive_int, default=8, help="epochs (default 8)")
    p.add_argument("--lr", type=positive_float, default=2e-3, help="peak learning rate")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument(
        "--init-from",
        metavar="MODEL",
        help="start from this line model: a run's best.keras, or a line-cnn's float32 "
        "model.onnx (such as the shipped src/inkdigits/weights/line/model.onnx)",
    )
    p.add_argument(
        "--architecture",
        choices=["line-cnn", "line-rnn"],
        default="line-cnn",
        help="line-cnn (convolutions only, the default) or line-rnn (a bidirectional LSTM "
        "on top); a line-rnn can start from a line-cnn's best.keras",
    )
    p.add_argument(
        "--fusion",
        nargs="+",
        type=fusion_weight,
        metavar="KEY=VALUE",
        help="how the Reader weighs this model against the digit classifier, written to "
        "its card (e.g. count_penalty=-3; see Reader._with_line_model)",
    )
    p.add_argument(
        "--augment",
        action="store_true",
        help="restretch, slant, shift and thicken or thin each training line anew every epoch",
    )
    p.add_argument(
        "--spike-count",
        type=count_or_zero,
        default=300,
        metavar="N",
        help="numbers of MNIST training digits to render to measure where the model marks "
        "digits, for the boxes the Reader draws (default 300; 0 skips it)",
    )
    p.add_argument("--data-dir", help=DATA_DIR_HELP)


# --------------------------------------------------------------------------- line-ensemble


def cmd_line_ensemble(args: argparse.Namespace) -> int:
    """Join line models into one: each step read with their probabilities multiplied.

    Writes OUT/model.onnx (every member in one ONNX graph: each step's weighted
    geometric mean of the members' probabilities, normalised) and card.json
    (the members' cards, checksums and weights). The members must mark digits
    at the same steps (their cards' spike_offset). Read with it:
    inkdigits read --line-model OUT/model.onnx ...
    """
    from .line_ensemble import join

    card = join(args.models, args.out, weights=args.weights, fusion=dict(args.fusion or []) or None)
    print(f"joined {len(args.models)} line models -> {Path(args.out) / card['onnx']['file']}")
    return 0


def _add_line_ensemble(sub: argparse._SubParsersAction) -> None:
    p = _subcommand(sub, "line-ensemble", cmd_line_ensemble)
    p.add_argument("models", nargs="+", help="line models' model.onnx files (a card beside each)")
    p.add_argument("--out", required=True, help="folder for the joint model.onnx and card.json")
    p.add_argument(
        "--weights", nargs="+", type=positive_float, help="one per model (default: equal)"
    )
    p.add_argument(
        "--fusion",
        nargs="+",
        type=fusion_weight,
        metavar="KEY=VALUE",
        help="how the Reader weighs the joint model against the digit classifier "
        "(default: the first model's)",
    )


# --------------------------------------------------------------------------- quantize


def cmd_quantize(args: argparse.Namespace) -> int:
    """Add an int8 model (model-int8.onnx) to a finished run folder, checked on MNIST.

    Static quantisation calibrated on 2,000 training images; the int8 model's
    validation and test accuracy, its agreement with float32 and its own
    calibration temperature go into the run's card.json. `inkdigits train`
    does this by itself at the end of every run.
    """
    import json

    from .data import load_mnist
    from .quantize import add_int8

    run = Path(args.run)
    config = run / "config.json"
    if not config.is_file():
        raise ConfigError(f"{run}: no config.json (not a run folder)")
    val_size = int(json.loads(config.read_text()).get("val_size", 5000))
    splits = load_mnist(args.data_dir).split(val_size)
    add_int8(run, splits, stream=sys.stdout)
    return 0


def _add_quantize(sub: argparse._SubParsersAction) -> None:
    p = _subcommand(sub, "quantize", cmd_quantize)
    p.add_argument("run", help="a run folder holding model.onnx and card.json")
    p.add_argument("--data-dir", help=DATA_DIR_HELP)


# --------------------------------------------------------------------------- serve


def cmd_serve(args: argparse.Namespace) -> int:
    """Serve the drawing pad page and the REST API (docs at /docs).

    Settings not given here come from INKDIGITS_SERVE_* environment variables
    (e.g. INKDIGITS_SERVE_MAX_UPLOAD_BYTES); see `inkdigits.serve.ServeSettings`.
    """
    try:
        import uvicorn

        from .serve import ServeSettings
    except ImportError as exc:
        raise ConfigError(
            f"serving needs the 'serve' extra ({exc.name} is missing): "
            "pip install 'inkdigits[serve]'"
        ) from None
    settings = ServeSettings.from_env()
    for name in ("model", "max_upload_bytes", "max_pixels", "timeout", "min_confidence"):
        value = getattr(args, name)
        if value is not None:
            setattr(settings, name, value)
    if settings.processes == -1 and args.workers > 1:  # share the cores among the workers
        settings.processes = max(1, (os.cpu_count() or 1) // args.workers)
    settings.validate()
    from .classifier import model_path

    if settings.model is not None and not model_path(settings.model).is_file():
        raise ConfigError(f"model {settings.model}: no such file")
    # The workers build the app from the environment (uvicorn's factory), so every
    # worker process sees the same settings.
    os.environ.update(settings.to_env())
    print(
        f"inkdigits: serving on http://{args.host}:{args.port}/  "
        f"(API docs at /docs, {args.workers} worker{'s' if args.workers > 1 else ''})",
        file=sys.stderr,
    )
    uvicorn.run(
        "inkdigits.serve:app_from_env",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level=args.log_level,
        access_log=args.access_log,
    )
    return 0


def _add_serve(sub: argparse._SubParsersAction) -> None:
    p = _subcommand(sub, "serve", cmd_serve)
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=positive_int, default=8000, help="port (default 8000)")
    p.add_argument("--workers", type=positive_int, default=1, help="worker processes (default 1)")
    p.add_argument("--model", help="ONNX model to serve, or `checks` (default: the shipped model)")
    p.add_argument(
        "--max-upload-bytes", type=positive_int, help="largest request body (default 10 MB)"
    )
    p.add_argument("--max-pixels", type=positive_int, help="largest image (default 50,000,000)")
    p.add_argument("--timeout", type=positive_float, help="seconds per request (default 10)")
    p.add_argument("--min-confidence", type=probability, help="default rejection threshold")
    p.add_argument("--log-level", default="warning", help="uvicorn log level (default warning)")
    p.add_argument("--access-log", action="store_true", help="log every request")


# --------------------------------------------------------------------------- main


_REGISTRARS: list[Callable[[argparse._SubParsersAction], None]] = [
    _add_data,
    _add_train,
    _add_evaluate,
    _add_read,
    _add_predict,
    _add_demo,
    _add_crops,
    _add_render_digits,
    _add_line_data,
    _add_train_line,
    _add_line_ensemble,
    _add_quantize,
    _add_serve,
]


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every subcommand registered."""
    parser = _Parser(
        prog="inkdigits",
        description="Read handwritten digits and numbers; train and evaluate MNIST CNNs.",
    )
    parser.add_argument("--version", action="version", version=f"inkdigits {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for register in _REGISTRARS:
        register(sub)
    for command in sub.choices.values():  # `inkdigits read X --debug` works too
        command.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                             help="show tracebacks on errors")  # fmt: skip
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    words = list(argv) if argv is not None else sys.argv[1:]
    args.command_line = "inkdigits " + " ".join(shlex.quote(str(w)) for w in words)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("inkdigits: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `inkdigits read ... | head`: the reader went away; not an error
        sys.stderr.close()
        return 0
    except (InkdigitsError, ConfigError) as exc:
        if args.debug:
            raise
        print(f"inkdigits: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except Exception as exc:  # a bug: still one line unless --debug
        if args.debug:
            raise
        print(
            f"inkdigits: internal error: {type(exc).__name__}: {exc} (rerun with --debug "
            "for the traceback and please report it)",
            file=sys.stderr,
        )
        return EXIT_ERROR


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
