"""Training and inference throughput of candidate encoders (with the sat decoder) on random batches.

    python -m bench.encoder_speed   # -> bench/results/encoder_speed.json
    python -m bench.encoder_speed --name epyc_bf16 --precision bf16 --batch 64 \
        --candidate 96x192/16,32,64,128/256 --candidate 96x192/16,32,96,192/256   # -> encoder_speed_epyc_bf16.json

A candidate is INPUT/CHANNELS/HIDDEN (the sat decoder's GRU state); training steps run under bf16 autocast with
--precision bf16, as `captcha train` does where the processor has bf16.

Run it on an idle machine: it measures images/s, and anything else running shares the cores.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from bench.provenance import provenance
from imcaption.files import write_text_atomically
from imcaption.models import EncoderConfig, RecognizerConfig, build_recognizer, trained_parameters
from imcaption.models.sequence_loss import sequence_loss
from imcaption.text.char_tokenizer import CharTokenizer

CANDIDATES = [
    (32, 64, (16, 32, 64, 128), 256),
    (64, 128, (16, 32, 64, 128), 256),
    (64, 128, (24, 48, 96, 192), 256),
    (96, 192, (16, 32, 64, 128), 256),
]


def parse_candidate(text: str) -> tuple[int, int, tuple[int, int, int, int], int]:
    """ "96x192/16,32,64,128/256" -> (96, 192, (16, 32, 64, 128), 256)."""
    size, channels, hidden = text.split("/")
    height, width = (int(n) for n in size.split("x"))
    c1, c2, c3, c4 = (int(n) for n in channels.split(","))
    return height, width, (c1, c2, c3, c4), int(hidden)


def images_per_second(
    height: int,
    width: int,
    channels: tuple[int, int, int, int],
    hidden: int = 256,
    batch: int = 128,
    precision: str = "fp32",
    steps: int = 5,
) -> dict:
    torch.manual_seed(0)
    config = RecognizerConfig("sat", EncoderConfig(height, width, channels), hidden=hidden)
    model = build_recognizer(config).to(memory_format=torch.channels_last)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    images = (torch.rand(batch, 3, height, width) * 255).contiguous(memory_format=torch.channels_last)
    targets = CharTokenizer().batch_targets(["horse", "cat", "unix", "www"] * (batch // 4))
    for step in range(3 + steps):  # three warm-up steps
        if step == 3:
            start = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            loss = sequence_loss(model(images, targets), targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    train = steps * batch / (time.perf_counter() - start)
    model.eval()
    with torch.no_grad():
        model.encoder(images)  # warm-up
        start = time.perf_counter()
        for _ in range(3):
            model(images, targets)
        infer = 3 * batch / (time.perf_counter() - start)
    return {
        "input": f"{height}x{width}",
        "channels": list(channels),
        "hidden": hidden,
        "parameters": trained_parameters(model),
        "train_images_per_s": round(train, 1),
        "forward_images_per_s": round(infer, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--name", default="", help="results name: encoder_speed_NAME.json (default encoder_speed.json)")
    parser.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--steps", type=int, default=5, help="timed training steps per candidate")
    parser.add_argument("--candidate", action="append", type=parse_candidate, help="INPUT/CHANNELS/HIDDEN, repeatable")
    parser.add_argument("--shared", action="store_true", help="record that other work shared the cores")
    args = parser.parse_args()
    candidates = args.candidate or CANDIDATES
    rows = [images_per_second(*c, batch=args.batch, precision=args.precision, steps=args.steps) for c in candidates]
    out = Path(__file__).parent / "results" / f"encoder_speed{'_' + args.name if args.name else ''}.json"
    results = {
        **provenance(cores_shared=args.shared),
        "threads": torch.get_num_threads(),
        "precision": args.precision,
        "batch": args.batch,
        "timed_steps": args.steps,
        "rows": rows,
    }
    write_text_atomically(out, json.dumps(results, indent=2))
    for row in rows:
        print(row)


if __name__ == "__main__":
    main()
