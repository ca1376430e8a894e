"""Other captcha families, measured: two third-party captcha libraries, each read by `sat` and by the CRNN peer.

    python -m bench.captcha_families [--count 20000] [--minutes 12] [--families captcha multicolorcaptcha]
                                     [--models sat crnn] [--seed 0] [--generate-only]

Each family is a PyPI captcha generator (`pip install -e .[train,families]`), drawn in the file-name layout
(`{label}_{index:05d}.png`) into DATA_ROOT/<family>: every image is a pure function of (family, seed, index), so
a rerun draws identical files and an interrupted one only draws what is missing. `imcaption captcha train` then
splits each folder 80/10/10 (its fixed split draw), takes the charset and lengths from the training labels and
the input size from the images, and trains each model for the same wall-clock budget into
RUNS_ROOT/<family>_<model> (resuming a run that has a last.pt; a finished one is only read again); the best
checkpoint reads the validation and the test split. One entry per (family, model) is merged into RESULTS, so
families and models can be run one at a time.

The families:
- `captcha` (captcha 0.7.1, ImageCaptcha's defaults): 160x60, its DroidSansMono face, warped and overlapping
  letters, dots and an arc in the text's color. Text: digits and capitals, 4-6 characters drawn per image.
- `multicolorcaptcha` (multicolorcaptcha 1.2.0): always 4 characters of its "ascii" mode (capitals and digits),
  each in its own square cell with a random face of its 44, size and rotation up to 55 degrees, two strokes in
  the letter's color per cell; difficulty 2 adds 2 dark lines across the word and 17 dots. Drawn at its
  smallest size without the margin: a 256x64 strip (see MULTICOLOR_SETTINGS).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import random
import re
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing import Pool
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a file, not with -m: make `bench` importable all the same
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from PIL import Image

RESULTS = Path(__file__).parent / "results" / "captcha_families.json"
MODELS = ("sat", "crnn")
# Bump when a draw function changes: a folder drawn by the old one is then refused instead of mixed with new files.
DRAW_VERSION = 1
MANIFEST_KIND = "imcaption-bench-captcha-family"
CHUNK = 64  # images per pool task: large enough to amortize the pickling, small enough for an even finish
FILE_NAME = re.compile(r"^(?P<label>[^_]+)_(?P<index>\d+)\.png$")

CAPTCHA_CHARSET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
CAPTCHA_LENGTHS = (4, 6)
# Why these: size 0 is the library's smallest (256x144, 64-px character cells) and the only one near the size of
# captchas on web forms; without the margin the image is the 256x64 strip of letters (4:1, as text captchas are)
# instead of that strip centred in a 16:9 black frame that no real captcha has. Difficulty 2 is the library's
# default: 2 dark lines across the word and 17 dots; from 3 on, the lines cross most letters. "ascii" is its
# widest alphabet (capitals and digits, as in the `captcha` family); one background color for the whole image
# (multicolor=False, the library's default) is how most real captchas look.
MULTICOLOR_SETTINGS = {"captcha_size_num": 0, "difficult_level": 2, "chars_mode": "ascii", "multicolor": False,
                       "margin": False}  # fmt: skip


@dataclass(frozen=True)
class Family:
    name: str
    requirement: str  # the pinned PyPI package, as in pyproject.toml's `families` extra
    settings: dict[str, Any]  # how it draws: recorded in the data folder's manifest and in the results
    draw: Callable[[int, int], tuple[str, Image.Image]]  # (seed, index) -> (label, RGB image)


class _SeededSecrets(random.Random):
    """The three functions of the `secrets` module that captcha 0.7.1 calls, from a seeded generator: that library
    draws every random choice from `secrets` (the OS's entropy), which no seed reaches."""

    def randbelow(self, n: int) -> int:
        return self.randrange(n)

    def randbits(self, k: int) -> int:
        return self.getrandbits(k)


@contextmanager
def _captcha_secrets(seed: str) -> Iterator[None]:
    """captcha.image's `secrets` swapped for a seeded stand-in for the block (one process draws one image at a
    time, so no other drawing sees it)."""
    import captcha.image

    real = captcha.image.secrets
    captcha.image.secrets = _SeededSecrets(seed)
    try:
        yield
    finally:
        captcha.image.secrets = real


@functools.cache
def _image_captcha():  # -> captcha.image.ImageCaptcha, an optional dependency
    """One ImageCaptcha per process: it loads its fonts once."""
    from captcha.image import ImageCaptcha

    return ImageCaptcha()


def draw_captcha(seed: int, index: int) -> tuple[str, Image.Image]:
    """The `captcha` family's image `index`: its text from one seeded stream, its drawing from another."""
    text_rng = random.Random(f"captcha/text/{seed}/{index}")
    length = text_rng.randint(*CAPTCHA_LENGTHS)
    text = "".join(text_rng.choice(CAPTCHA_CHARSET) for _ in range(length))
    with _captcha_secrets(f"captcha/image/{seed}/{index}"):
        image = _image_captcha().generate_image(text)
    return text, image.convert("RGB")


@functools.cache
def _multicolor_generator():  # -> multicolorcaptcha.CaptchaGenerator, an optional dependency
    from multicolorcaptcha import CaptchaGenerator

    generator = CaptchaGenerator(MULTICOLOR_SETTINGS["captcha_size_num"])
    # It lists its fonts in os.walk's order, which is the file system's: sorted, a font index means the same face
    # on every machine.
    generator.l_fonts.sort()
    return generator


@contextmanager
def _global_random(seed: str) -> Iterator[None]:
    """The `random` module's shared generator seeded for the block, its state restored afterwards:
    multicolorcaptcha draws everything, its text included, from it."""
    state = random.getstate()
    random.seed(seed)
    try:
        yield
    finally:
        random.setstate(state)


def draw_multicolor(seed: int, index: int) -> tuple[str, Image.Image]:
    """The `multicolorcaptcha` family's image `index`; the library picks the text itself and returns it."""
    settings = {k: v for k, v in MULTICOLOR_SETTINGS.items() if k != "captcha_size_num"}
    with _global_random(f"multicolorcaptcha/{seed}/{index}"):
        drawn = _multicolor_generator().gen_captcha_image(**settings)
    return drawn.characters, drawn.image.convert("RGB")


FAMILIES = {
    "captcha": Family(
        "captcha",
        "captcha==0.7.1",
        {"size": [160, 60], "charset": CAPTCHA_CHARSET, "lengths": list(CAPTCHA_LENGTHS), "fonts": "library default"},
        draw_captcha,
    ),
    "multicolorcaptcha": Family("multicolorcaptcha", "multicolorcaptcha==1.2.0", MULTICOLOR_SETTINGS, draw_multicolor),
}


def _draw_chunk(job: tuple[str, int, str, tuple[int, ...]]) -> int:
    """Draw and write one chunk of indices (in a pool worker); return how many were written."""
    from imcaption.captcha.generator import save_png_atomically  # temporary name, then rename

    name, seed, folder, indices = job
    for index in indices:
        label, image = FAMILIES[name].draw(seed, index)
        save_png_atomically(image, Path(folder) / f"{label}_{index:05d}.png")
    return len(indices)


def drawn_indices(folder: Path) -> set[int]:
    """Indices whose image is already in `folder` (its label is in the name, so the index is what identifies it)."""
    with os.scandir(folder) as entries:
        return {int(m["index"]) for entry in entries if (m := FILE_NAME.match(entry.name))}


def manifest(family: Family, seed: int) -> dict[str, Any]:
    """What decides the files of a family's folder; the count is left out so that a folder can grow."""
    wanted = {"kind": MANIFEST_KIND, "draw_version": DRAW_VERSION, "family": family.name}
    wanted |= {"library": family.requirement, "settings": family.settings, "seed": seed}
    return json.loads(json.dumps(wanted))  # tuples as lists, as they read back from the file


def generate(family: Family, folder: Path, count: int, seed: int, workers: int, progress: bool = True) -> int:
    """Draw images 0..count-1 of `family` into `folder` that are not there yet; return how many were drawn."""
    from imcaption.files import remove_dead_temps
    from imcaption.locks import folder_lock
    from imcaption.manifest import DatasetFolderError, claim_folder, mark_complete

    folder.mkdir(parents=True, exist_ok=True)
    wanted = manifest(family, seed)
    with folder_lock(folder, f"drawing the {family.name} family"):
        try:  # another seed, library or draw version, or a folder of other images: refused before any file is drawn
            claim_folder(folder, wanted, foreign=any(folder.glob("*.png")))
        except DatasetFolderError as refused:
            raise SystemExit(str(refused)) from None
        remove_dead_temps(folder)
        present = drawn_indices(folder)
        beyond = sorted(i for i in present if i >= count)
        if beyond:  # the layout reader would train on them: a smaller --count must not leave them in the set
            raise SystemExit(f"{folder} holds {len(beyond):,} images past --count {count:,} (index {beyond[0]} and "
                             "up): pass a --count that covers them, or delete the folder")  # fmt: skip
        missing = [i for i in range(count) if i not in present]
        if missing:
            _draw_missing(family, folder, seed, missing, workers, progress)
        mark_complete(folder, {**wanted, "count": count})
    return len(missing)


def _draw_missing(family: Family, folder: Path, seed: int, missing: list[int], workers: int, progress: bool) -> None:
    from imcaption.engine.progress import progress_bar

    jobs = [(family.name, seed, str(folder), tuple(missing[s : s + CHUNK])) for s in range(0, len(missing), CHUNK)]
    bar = progress_bar(enabled=progress, total=len(missing), desc=family.name, unit="img", smoothing=0.05)
    with bar, Pool(workers) as pool:
        for done in pool.imap_unordered(_draw_chunk, jobs):
            bar.update(done)


def train_and_evaluate(data: Path, run: Path, model: str, minutes: float, seed: int) -> dict[str, dict]:
    """Train `model` on `data` for `minutes` into `run` (resumed if it has a last.pt), then read the validation
    and test splits with its best checkpoint; return the two evaluation reports."""
    from imcaption.cli import main as cli

    command = ["captcha", "train", str(data), "--out", str(run), "--minutes", f"{minutes:g}", "--seed", str(seed)]
    command += ["--quiet", *(["--model", model] if model != "sat" else [])]
    if (run / "last.pt").is_file():  # same options: a resumed run refuses any that would change it
        command.append("--resume")
    if cli(command) != 0:
        raise SystemExit(f"training {run} did not finish")
    reports = {}
    for split in ("val", "test"):
        out = run / f"evaluate_{split}.json"
        if cli(["captcha", "evaluate", str(run / "best.pt"), str(data), "--split", split, "--json", str(out),
                "--quiet"]) != 0:  # fmt: skip
            raise SystemExit(f"evaluating {run} on {split} did not finish")
        reports[split] = json.loads(out.read_text())
    return reports


def dataset_facts(data: Path) -> dict[str, Any]:
    """The labels, split sizes and image size of a family's folder, as training sees them."""
    from imcaption.captcha.dataset import open_dataset

    dataset = open_dataset(data)
    splits = {name: len(dataset.split(name)) for name in ("train", "val", "test")}
    labels = list(dataset.labels.values())
    with Image.open(dataset.image_path(0)) as image:
        width, height = image.size
    return {
        "charset": "".join(sorted(set("".join(labels)))),
        "charset_size": len(set("".join(labels))),
        "label_lengths": [min(map(len, labels)), max(map(len, labels))],
        "images": {"total": dataset.image_count, **splits},
        "image_width": width,
        "image_height": height,
    }


def run_facts(run: Path) -> dict[str, Any]:
    """What the training run recorded: its input size, budget, wall minutes, steps and speed."""
    from imcaption.captcha.task import RECOGNIZER_FORMAT, CaptchaTrainConfig
    from imcaption.engine.checkpoint import load_checkpoint
    from imcaption.visualize import read_metrics

    config = CaptchaTrainConfig.from_dict(load_checkpoint(run / "last.pt", RECOGNIZER_FORMAT)["config"])
    curve = read_metrics(run / "metrics.jsonl")
    speeds = [p["train_images_per_s"] for p in curve if "train_images_per_s" in p]
    return {
        "input_size": config.input_size.tag,
        "budget_minutes": config.loop.minutes,
        "train_minutes": round(curve[-1]["wall_minutes"], 2),
        "steps": curve[-1]["step"],
        "train_images_per_s": round(sum(speeds) / len(speeds), 1) if speeds else None,
    }


def scores(reports: dict[str, dict]) -> dict[str, Any]:
    return {
        **{
            f"{split}_{metric}": round(r[metric], 5)
            for split, r in reports.items()
            for metric in ("exact_match", "cer")
        },
        "test_top_confusions": reports["test"]["top_confusions"][:6],
    }


def look_alike_share(run: Path, split: str, pairs: tuple[tuple[str, str], ...] = (("O", "0"),)) -> float | None:
    """The share of a split's misreads that are right once each pair of look-alike characters counts as one
    (`0` and `O` in most faces): how much of the error no reader of these images could be sure of."""
    misread = run / f"misread_{split}.txt"
    if not misread.is_file():
        return None
    rows = [line.split("\t") for line in misread.read_text(encoding="utf-8").splitlines() if line]

    def folded(text: str) -> str:
        for a, b in pairs:
            text = text.replace(a, b)
        return text

    return round(sum(folded(truth) == folded(read) for _, truth, read in rows) / len(rows), 4) if rows else 0.0


def result_entry(made_by: dict, seed: int, family: Family, model: str, facts: dict, run: Path,
                 reports: dict[str, dict]) -> dict[str, Any]:  # fmt: skip
    """One (family, model) row of the results: how it was made, the data, the run and its scores."""
    clean = not made_by["git_commit"].endswith("+changes")  # tracked files only, as git_commit looks at them
    made = {**made_by, "tree_clean": clean, "seed": seed}
    drawn = {"family": family.name, "library": family.requirement, "drawn_with": family.settings}
    look_alike = {"test_misreads_only_0_O": look_alike_share(run, "test")}
    return {**made, **drawn, "model": model, **facts, **run_facts(run), **scores(reports), **look_alike}


def merge_result(path: Path, key: str, entry: dict) -> None:
    """Put `entry` under `key` in the JSON at `path`, keeping every other entry (runs are made one at a time)."""
    from imcaption.files import write_text_atomically

    results = json.loads(path.read_text()) if path.is_file() else {}
    results[key] = entry
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomically(path, json.dumps(dict(sorted(results.items())), indent=2) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=20_000, help="images per family (default: 20000)")
    parser.add_argument("--minutes", type=float, default=12.0, help="training budget per model (default: 12)")
    parser.add_argument("--families", nargs="+", choices=list(FAMILIES), default=list(FAMILIES))
    parser.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    parser.add_argument("--seed", type=int, default=0, help="draws the images and seeds training (default: 0)")
    parser.add_argument("--generate-only", action="store_true", help="draw the datasets, train nothing")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="drawing processes (default: all)")
    parser.add_argument("--data-root", type=Path, default=Path("data/families"))
    parser.add_argument("--runs-root", type=Path, default=Path("runs/families"))
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--shared", action="store_true", help="record that other work shared the cores")
    args = parser.parse_args()

    from bench.provenance import provenance

    made_by = provenance(args.shared)  # before anything runs: later edits to the tree are not the code that ran
    for name in args.families:
        family, data = FAMILIES[name], args.data_root / name
        started = time.perf_counter()
        drawn = generate(family, data, args.count, args.seed, args.workers)
        seconds = time.perf_counter() - started
        per_1000 = f", {1000 * seconds / drawn:.2f} s per 1,000" if drawn else ""
        print(f"{data}: {args.count:,} images ({drawn:,} drawn in {seconds:.1f} s{per_1000})", flush=True)
        if args.generate_only:
            continue
        facts = dataset_facts(data)
        for model in args.models:
            run = args.runs_root / f"{name}_{model}"
            reports = train_and_evaluate(data, run, model, args.minutes, args.seed)
            entry = result_entry(made_by, args.seed, family, model, facts, run, reports)
            merge_result(args.results, f"{name}_{model}", entry)
            print(f"{name}_{model}: " + json.dumps(scores(reports)), flush=True)


if __name__ == "__main__":
    main()
