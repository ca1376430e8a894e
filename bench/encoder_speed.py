"""Training and inference throughput of candidate encoders (with the sat decoder) on random batches.

    python -m bench.encoder_speed   # -> bench/results/encoder_speed.json

Run it on an idle machine: it measures images/s, and anything else running shares the cores.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch

from bench.provenance import provenance
from imcaption.files import write_text_atomically
from imcaption.models import EncoderConfig, RecognizerConfig, build_recognizer, trained_parameters
from imcaption.models.sat import masked_cross_entropy
from imcaption.text.char_tokenizer import CharTokenizer

CANDIDATES = [
    (32, 64, (16, 32, 64, 128)),
    (64, 128, (16, 32, 64, 128)),
    (64, 128, (24, 48, 96, 192)),
    (96, 192, (16, 32, 64, 128)),
]


def images_per_second(height: int, width: int, channels: tuple[int, int, int, int], batch: int = 128) -> dict:
    torch.manual_seed(0)
    config = RecognizerConfig("sat", EncoderConfig(height, width, channels))
    model = build_recognizer(config).to(memory_format=torch.channels_last)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    images = (torch.rand(batch, 3, height, width) * 255).contiguous(memory_format=torch.channels_last)
    targets = CharTokenizer().batch_targets(["horse", "cat", "unix", "www"] * (batch // 4))
    for step in range(8):
        if step == 3:
            start = time.perf_counter()
        loss = masked_cross_entropy(model(images, targets), targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    train = 5 * batch / (time.perf_counter() - start)
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
        "parameters": trained_parameters(model),
        "train_images_per_s": round(train, 1),
        "forward_images_per_s": round(infer, 1),
    }


def main() -> None:
    rows = [images_per_second(*candidate) for candidate in CANDIDATES]
    out = Path(__file__).parent / "results" / "encoder_speed.json"
    results = {**provenance(cores_shared=False), "threads": torch.get_num_threads(), "rows": rows}
    write_text_atomically(out, json.dumps(results, indent=2))
    for row in rows:
        print(row)


if __name__ == "__main__":
    main()
