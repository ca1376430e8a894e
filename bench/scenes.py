"""Benchmark: captioning on the synthetic scenes dataset, for the sat, nic and mrnn decoders.

    python -m bench.scenes [--data data/scenes] [--decoders sat nic mrnn] [--encoder cnn|mobilenet] [--epochs N]

Generates the default scenes set (6,000 images for training and validation, 600 more for the test split,
seed 0) if --data has none, trains each decoder with the default configuration (resuming an interrupted run in
runs/bench_scenes_<decoder>[_<encoder>]), which keeps the checkpoint with the best validation BLEU-4; captions
the test images with that checkpoint, greedy and beam 3, scores them with pycocoevalcap (BLEU-1..4, METEOR,
ROUGE-L, CIDEr), and measures attention grounding for sat (nic and mrnn have no attention). Writes
bench/results/scenes.json, or scenes_<encoder>.json when --encoder is given.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from imcaption.files import write_text_atomically

if __package__ in (None, ""):  # run as a file, not with -m: make `bench` importable all the same
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

RESULTS = Path(__file__).parent / "results"


def train(data: Path, run: Path, decoder: str, encoder: str | None, epochs: int | None) -> None:
    from imcaption.cli import main as cli

    args = ["caption", "train", str(data), "--out", str(run), "--decoder", decoder, "--quiet"]
    args += ["--encoder", encoder] if encoder else []
    args += ["--epochs", str(epochs)] if epochs else []
    if (run / "last.pt").is_file():
        args.append("--resume")
    if cli(args) != 0:
        raise SystemExit(f"training {decoder} did not finish")


def evaluate(data: Path, run: Path) -> dict:
    """Caption metrics (greedy and beam 3) on the test split, and grounding where there is attention."""
    import torch
    from PIL import Image

    from imcaption.api import Captioner
    from imcaption.captioning.coco import read_coco_captions
    from imcaption.captioning.grounding import measure_grounding
    from imcaption.captioning.metrics import caption_scores
    from imcaption.captioning.task import CAPTIONER_FORMAT, CaptionTrainConfig, build_caption_model, held_out_split
    from imcaption.engine.checkpoint import load_checkpoint
    from imcaption.models import trained_parameters
    from imcaption.visualize import read_metrics

    captioner = Captioner.load(run / "best.pt")
    config = CaptionTrainConfig.from_dict(load_checkpoint(run / "best.pt", CAPTIONER_FORMAT)["config"])
    split, captions_file = held_out_split(data, "test")
    images = read_coco_captions(captions_file, data / "images")
    inputs = captioner.inputs(captioner.pixels([image.path for image in images]))
    references = {n: list(image.captions) for n, image in enumerate(images)}
    ids, attention = captioner.caption_inputs(inputs)
    greedy = {n: captioner.tokenizer.decode(row) for n, row in enumerate(ids)}
    beam_ids, _ = captioner.caption_inputs(inputs, beam=3)
    scores = caption_scores(references, greedy)
    beam_scores = caption_scores(references, {n: captioner.tokenizer.decode(row) for n, row in enumerate(beam_ids)})
    curve = read_metrics(run / "metrics.jsonl")
    result = {
        "split": split,
        "images": len(images),
        **{name: round(value, 4) for name, value in scores.items()},
        "beam3": {name: round(value, 4) for name, value in beam_scores.items()},
        "val_bleu4_selected": round(max(p["bleu4"] for p in curve if "bleu4" in p), 4),  # what picked best.pt
        "train_minutes": round(curve[-1]["wall_minutes"], 2),
        "encoder": captioner.spec.encoder,
        "image_size": captioner.spec.image_size,
        "epochs": config.loop.epochs,
        "parameters": trained_parameters(build_caption_model(captioner.spec, captioner.tokenizer.vocab_size)),
        "examples": [{"image": images[n].path.name, "caption": greedy[n]} for n in range(5)],
    }
    if attention is None:
        return {**result, "grounding": None, "grounding_note": f"{captioner.spec.decoder} has no attention"}
    objects = json.loads((data / "annotations" / "objects.json").read_text())
    report = measure_grounding(
        torch.tensor(ids),
        attention,
        captioner.tokenizer,
        [objects[str(image.image_id)] for image in images],
        captioner.grid,
        [Image.open(image.path).size for image in images],  # the boxes' pixels: the image as stored
    )
    return {
        **result,
        "grounding": round(report.rate, 4),
        "grounding_words": report.words,
        "grounding_chance": round(report.chance, 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="data/scenes")
    parser.add_argument("--decoders", nargs="+", default=["sat", "nic", "mrnn"], choices=["sat", "nic", "mrnn"])
    parser.add_argument("--encoder", choices=["cnn", "mobilenet"], default=None, help="default: the config's")
    parser.add_argument("--epochs", type=int, default=None, help="override the default epochs")
    parser.add_argument("--shared", action="store_true", help="record that other work shared the cores")
    args = parser.parse_args()

    from bench.provenance import provenance
    from imcaption.captioning.scenes import generate_scenes
    from imcaption.manifest import is_complete

    made_by = provenance(args.shared)
    data = Path(args.data)
    if not is_complete(data):
        generate_scenes(data)
    out = RESULTS / (f"scenes_{args.encoder}.json" if args.encoder else "scenes.json")
    results = json.loads(out.read_text()) if out.is_file() else {}
    results.update({"nproc": made_by["nproc"], "cpu": made_by["cpu"], "dataset": str(data)})
    for decoder in args.decoders:
        run = Path(f"runs/bench_scenes_{decoder}" + (f"_{args.encoder}" if args.encoder else ""))
        train(data, run, decoder, args.encoder, args.epochs)
        results[decoder] = {
            **evaluate(data, run),
            **made_by,
        }
        RESULTS.mkdir(parents=True, exist_ok=True)
        write_text_atomically(out, json.dumps(results, indent=2) + "\n")
        print(decoder, json.dumps({k: v for k, v in results[decoder].items() if k != "examples"}))


if __name__ == "__main__":
    main()
