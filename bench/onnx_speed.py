"""PyTorch against ONNX Runtime on the same model and the same images, back to back.

    python -m bench.onnx_speed runs/bench_sat_60/best.pt --name sat_60   # -> bench/results/onnx_speed_sat_60.json

Exports the checkpoint to ONNX, checks both backends read the same words on the first --count validation images
(and how far their logits differ), then times each: images/s at batch 256 over those images (the median of three
passes, alternating between the backends), and at batch 1 the images/s and the p50/p99 latency of --single
single-image calls. Greedy decoding in fp32, inputs from the cache (no PNG decoding), all cores. Run it on an
idle machine.

It also times the encoder alone (the convolutions, exported to ONNX on its own) in both backends at batch 256,
in the same alternating passes. The encoder is what a reading spends most of its time on; ONNX Runtime's
encoder-only speed over PyTorch's whole reading is the largest speed-up ONNX Runtime could show if its decoding
steps cost nothing (`onnx_speedup_ceiling_batch_256`), and the difference between whole and encoder-only times
is what each backend's decoding steps cost.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a file, not with -m: make `bench` importable all the same
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

from imcaption.files import write_text_atomically

RESULTS = Path(__file__).parent / "results"


def batch_speed(decode, pixels: np.ndarray, batch: int) -> float:
    """Images/s decoding `pixels` in batches of `batch`, after one warm-up batch."""
    decode(pixels[:batch])
    start = time.perf_counter()
    for i in range(0, len(pixels), batch):
        decode(pixels[i : i + batch])
    return len(pixels) / (time.perf_counter() - start)


def encoded(encoder, pixels, kind: str):
    """What a `kind` model's decoder reads of its encoder: the cells (B, N, C) where it attends, else the grid."""
    from imcaption.deploy.onnx_export import STEP_DECODERS

    return encoder.cells(pixels) if kind in STEP_DECODERS else encoder(pixels)


def encoder_graph(model, kind: str):
    """(B, H, W, 3) uint8 -> what the decoder of a `kind` model reads, as an nn.Module to export: the encoder of
    the model the whole graph exports (`for_export`), fed as the whole graph feeds it, without the decoding
    steps."""
    import torch

    from imcaption.deploy.onnx_export import for_export, model_input, reads_pixels

    encoder = for_export(model).encoder

    class EncoderGraph(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder, self.takes_pixels = encoder, reads_pixels(encoder)

        def forward(self, images: torch.Tensor) -> torch.Tensor:
            return encoded(self.encoder, model_input(images, self.takes_pixels), kind)

    return EncoderGraph().eval()


def encoder_readers(torch_reader, folder: Path) -> dict:
    """Each backend's encoder alone, as a function of (B, H, W, 3) uint8 pixels, fed as each backend's whole
    reading feeds it."""
    import torch

    from imcaption.deploy.onnx_export import export_graph
    from imcaption.deploy.onnx_reader import open_session

    size = torch_reader.size
    example = torch.zeros(2, size.height, size.width, 3, dtype=torch.uint8)
    kind = torch_reader.config.kind
    graph = encoder_graph(torch_reader.model, kind)
    session = open_session(export_graph(graph, example, ["features"], {}, folder / "encoder.onnx"))
    encoder = torch_reader.model.encoder

    def pytorch(pixels: np.ndarray) -> None:
        with torch.inference_mode():
            encoded(encoder, torch.from_numpy(pixels).permute(0, 3, 1, 2), kind)  # uint8, as in decode_pixels

    def onnxruntime(pixels: np.ndarray) -> None:
        session.run(None, {"images": np.ascontiguousarray(pixels)})

    return {"pytorch": pytorch, "onnxruntime": onnxruntime}


def single_latency(decode, pixels: np.ndarray) -> dict:
    """Single-image calls: images/s and latency percentiles in milliseconds."""
    decode(pixels[:1])
    times = []
    for i in range(len(pixels)):
        start = time.perf_counter()
        decode(pixels[i : i + 1])
        times.append(time.perf_counter() - start)
    ms = np.array(times) * 1000
    return {
        "images_per_s": round(len(ms) / (ms.sum() / 1000), 1),
        "p50_ms": round(float(np.percentile(ms, 50)), 3),
        "p99_ms": round(float(np.percentile(ms, 99)), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint")
    parser.add_argument("--name", required=True)
    parser.add_argument("--data", default="data/words_captcha")
    parser.add_argument("--count", type=int, default=5_120, help="validation images for parity and batch 256")
    parser.add_argument("--single", type=int, default=1_000, help="single-image calls timed at batch 1")
    parser.add_argument("--shared", action="store_true", help="record that other work shared the cores")
    args = parser.parse_args()

    import torch

    from bench.provenance import provenance
    from bench.timing import PASSES
    from imcaption.api import Recognizer
    from imcaption.captcha.dataset import CaptchaDataset
    from imcaption.captcha.image_cache import ensure_cache
    from imcaption.deploy.onnx_export import GreedyGraph, export_onnx
    from imcaption.deploy.onnx_reader import OnnxRecognizer

    made_by = provenance(args.shared)
    torch_reader = Recognizer.load(args.checkpoint, precision="fp32")  # the number format ONNX Runtime reads in
    with tempfile.TemporaryDirectory() as folder:
        onnx_path = export_onnx(args.checkpoint, Path(folder) / "model.onnx")
        onnx_bytes = onnx_path.stat().st_size
        onnx_reader = OnnxRecognizer.load(onnx_path)
        encoders = encoder_readers(torch_reader, Path(folder))
    dataset = CaptchaDataset.open(args.data)
    cache = ensure_cache(dataset, torch_reader.size)
    pixels = cache.read(list(dataset.split("val").indices)[: args.count])

    torch_words = torch_reader.decode_pixels(pixels).words
    onnx_words = onnx_reader.decode_pixels(pixels).words
    name = "log_probs" if torch_reader.config.kind in ("ctc", "crnn") else "logits"
    with torch.inference_mode():
        graph = GreedyGraph(torch_reader.model, torch_reader.config.kind).eval()
        torch_scores = graph(torch.from_numpy(pixels[:512]))[0].numpy()
    difference = float(np.abs(onnx_reader.scores(pixels[:512])[name] - torch_scores).max())

    backends = {"pytorch": torch_reader.decode_pixels, "onnxruntime": onnx_reader.decode_pixels}
    # Passes alternate between the backends, so a slow moment of the shared machine falls on both alike.
    passes: dict[str, list[float]] = {backend: [] for backend in backends}
    encoder_passes: dict[str, list[float]] = {backend: [] for backend in encoders}
    for _ in range(PASSES):
        for backend, decode in backends.items():
            passes[backend].append(round(batch_speed(decode, pixels, 256), 1))
        for backend, encode in encoders.items():
            encoder_passes[backend].append(round(batch_speed(encode, pixels, 256), 1))
    encoder_only = {
        backend: {"batch_256_images_per_s": statistics.median(rates), "batch_256_passes_images_per_s": rates}
        for backend, rates in encoder_passes.items()
    }
    speeds = {
        backend: {
            "batch_256_images_per_s": statistics.median(passes[backend]),
            "batch_256_passes_images_per_s": passes[backend],
            "batch_1": single_latency(decode, pixels[: args.single]),
        }
        for backend, decode in backends.items()
    }
    result = {
        "model": torch_reader.config.kind,
        "checkpoint": args.checkpoint,
        "onnx_bytes": onnx_bytes,
        "parity_images": len(pixels),
        "same_words": sum(a == b for a, b in zip(torch_words, onnx_words, strict=True)),
        "max_logit_difference": difference,
        "torch_threads": torch.get_num_threads(),
        **speeds,
        "onnx_speedup_batch_256": round(
            speeds["onnxruntime"]["batch_256_images_per_s"] / speeds["pytorch"]["batch_256_images_per_s"], 2
        ),
        "encoder_only": encoder_only,
        "onnx_speedup_ceiling_batch_256": round(
            encoder_only["onnxruntime"]["batch_256_images_per_s"] / speeds["pytorch"]["batch_256_images_per_s"], 2
        ),
        "onnx_speedup_batch_1": round(
            speeds["onnxruntime"]["batch_1"]["images_per_s"] / speeds["pytorch"]["batch_1"]["images_per_s"], 2
        ),
        **made_by,
    }
    write_text_atomically(RESULTS / f"onnx_speed_{args.name}.json", json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
