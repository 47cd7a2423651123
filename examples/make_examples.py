"""Make the sample images in this folder (seeded; built from MNIST *test* digits only).

    python examples/make_examples.py        # needs the MNIST files (see the README's Data)

Each image is written with its label into labels.csv; README.md says how each was made.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from PIL import Image

from inkdigits import data, synth

HERE = Path(__file__).resolve().parent

# name -> (seed, number of digits, forced choices); see inkdigits.synth for what each means
EXAMPLES = {
    "pad_digit.png": (1, 1, dict(background="white", dark=False, ink="black", height=220,
                                 rotation=0.0, blur=0.0, noise=0.0, jpeg=0, stroke=1.0)),
    "photo_blue_digit.jpg": (2, 1, dict(background="photo", dark=False, ink="blue", height=90,
                                        rotation=-6.0, blur=0.6, noise=4.0, jpeg=80, stroke=0.0)),
    "chalkboard_digit.jpg": (3, 1, dict(background="photo", dark=True, ink="black", height=120,
                                        rotation=4.0, blur=0.5, noise=3.0, jpeg=0, stroke=1.0)),
    "form_number.jpg": (4, 6, dict(background="photo", dark=False, ink="blue", height=70,
                                   rotation=3.0, blur=0.5, noise=4.0, jpeg=85, stroke=0.0,
                                   spacing="spaced", punctuation=False)),
    "check_amount.jpg": (5, 5, dict(background="check", dark=False, ink="black", height=50,
                                    rotation=-2.0, blur=0.4, noise=3.0, jpeg=85, stroke=0.0,
                                    spacing="close", punctuation=True)),
    "postcode.png": (6, 5, dict(background="white", dark=False, ink="black", height=60,
                                rotation=1.0, blur=0.0, noise=0.0, jpeg=0, stroke=0.0,
                                spacing="spaced", punctuation=False)),
}  # fmt: skip


def main() -> None:
    mnist = data.load_mnist()
    rows = []
    for name, (seed, n, force) in EXAMPLES.items():
        s = synth.render(np.random.default_rng(seed), mnist.test_images, mnist.test_labels, n, **force)
        im = Image.fromarray(s.image)
        if name.endswith(".jpg"):
            im.save(HERE / name, quality=90)
        else:
            im.save(HERE / name)
        rows.append({"file": name, "label": s.label, "mnist_test_indices": s.spec["mnist_test_indices"]})
        print(f"{name}: {s.label}")
    with open(HERE / "labels.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["file", "label", "mnist_test_indices"])
        w.writeheader()
        for r in rows:
            w.writerow({**r, "mnist_test_indices": " ".join(map(str, r["mnist_test_indices"]))})


if __name__ == "__main__":
    main()
