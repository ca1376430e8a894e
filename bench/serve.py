"""Load and abuse test of `imcaption serve` on loopback.

    python -m bench.serve runs/bench_sat_60/best.pt --clients 16 --seconds 30   # -> bench/results/serve.json

Starts the service as its own process (the command a user runs), then N concurrent clients each send one validation
captcha PNG per request (600x320, as the dataset stores them) for T seconds: throughput, p50/p95/p99 latency,
errors, and the server's peak RSS. A second round sends the same captchas resized to the model's input, as PNGs
(what a client that resizes before sending uploads), and the bench times decoding and resizing one 600x320 PNG on
one core, the cost every full-size request pays before the model. Then a second server with the abuse corpus's
limits (tests/abuse_corpus.py) receives the corpus --abuse-rounds times: every answer must be its 4xx, none a 5xx,
and the server must still be up, with its RSS before and after. The clients share the 2 cores with the server, so
the throughput is that of the whole loopback system. Run it on an idle machine.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a file, not with -m: make `bench` importable all the same
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx
import numpy as np

from bench.loopback import free_port
from imcaption.files import write_text_atomically
from imcaption.images import ImageSize

RESULTS = Path(__file__).parent / "results"


def memory_kb(pid: int, field: str) -> int:
    """VmRSS (now) or VmHWM (peak) of a process, in kB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise ValueError(f"no {field} for process {pid}")


def start_server(model: str, options: list[str]) -> tuple[subprocess.Popen, str]:
    port = free_port()
    command = [sys.executable, "-m", "imcaption", "serve", model, "--port", str(port), *options]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120  # a checkpoint is exported to ONNX first
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the server exited with {server.returncode}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return server, url
        except httpx.TransportError:
            time.sleep(0.2)
    server.kill()
    raise SystemExit("the server did not start")


async def load(url: str, payloads: list[bytes], clients: int, seconds: float) -> dict:
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    stop = time.monotonic() + seconds

    async def client(index: int, http: httpx.AsyncClient) -> None:
        n = index
        while time.monotonic() < stop:
            data = payloads[n % len(payloads)]
            n += clients
            start = time.perf_counter()
            try:
                answer = await http.post(f"{url}/v1/read", files={"image": ("captcha.png", data, "image/png")})
                key = str(answer.status_code)
            except httpx.HTTPError as err:
                key = type(err).__name__
            latencies.append(time.perf_counter() - start)
            statuses[key] = statuses.get(key, 0) + 1

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(timeout=30, limits=limits) as http:
        began = time.perf_counter()
        await asyncio.gather(*(client(i, http) for i in range(clients)))
        elapsed = time.perf_counter() - began
    ms = np.array(latencies) * 1000
    ok = statuses.get("200", 0)
    return {
        "requests": len(latencies),
        "images_per_s": round(ok / elapsed, 1),
        "p50_ms": round(float(np.percentile(ms, 50)), 1),
        "p95_ms": round(float(np.percentile(ms, 95)), 1),
        "p99_ms": round(float(np.percentile(ms, 99)), 1),
        "errors": len(latencies) - ok,
        "statuses": statuses,
    }


def small_pngs(paths: list[Path], size: ImageSize) -> list[bytes]:
    """The captchas at the model's input size, PNG-encoded."""
    from PIL import Image

    from imcaption.images import load_image, to_model_input

    out = []
    for path in paths:
        buffer = io.BytesIO()
        Image.fromarray(to_model_input(load_image(path), size)).save(buffer, "PNG")
        out.append(buffer.getvalue())
    return out


def decode_ms(payloads: list[bytes], size: ImageSize) -> float:
    """Milliseconds of one core to decode and resize one upload to the model's input, as the service does."""
    from imcaption.serve.app import decode_upload

    start = time.perf_counter()
    for data in payloads:
        decode_upload("bench", data, size, 12_000_000)
    return round(1000 * (time.perf_counter() - start) / len(payloads), 3)


def abuse(url: str, real: Path, rounds: int) -> dict:
    from tests.abuse_corpus import ABUSE

    wrong: list[str] = []
    server_errors = 0
    with httpx.Client(timeout=30) as http:
        for _ in range(rounds):
            for name, (options, status, code) in ABUSE.items():
                options = {key: value(real) if callable(value) else value for key, value in options.items()}
                answer = http.post(f"{url}/v1/read", **options)
                server_errors += answer.status_code >= 500
                if answer.status_code != status or answer.json().get("error", {}).get("code") != code:
                    wrong.append(f"{name}: {answer.status_code}")
        alive = http.get(f"{url}/healthz").json()["status"] == "ok"
    return {"requests": rounds * len(ABUSE), "cases": len(ABUSE), "server_errors_5xx": server_errors,
            "unexpected": sorted(set(wrong)), "alive_after": alive}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", help="a checkpoint or an .onnx file")
    parser.add_argument("--data", default="data/words_captcha")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--abuse-rounds", type=int, default=20)
    parser.add_argument("--shared", action="store_true", help="record that other work shared the cores")
    args = parser.parse_args()

    from bench.provenance import provenance
    from imcaption.api import Recognizer
    from imcaption.captcha.dataset import CaptchaDataset
    from tests.abuse_corpus import CORPUS_LIMITS

    made_by = provenance(args.shared)
    dataset = CaptchaDataset.open(args.data)
    paths = [dataset.image_path(i) for i in list(dataset.split("val").indices)[:256]]
    payloads = [p.read_bytes() for p in paths]

    model_input = Recognizer.load(args.model).size
    small = small_pngs(paths, model_input)
    server, url = start_server(args.model, [])
    try:
        loaded = asyncio.run(load(url, payloads, args.clients, args.seconds))
        loaded_small = asyncio.run(load(url, small, args.clients, args.seconds))
        loaded["server_peak_rss_gb"] = round(memory_kb(server.pid, "VmHWM") / 1024**2, 3)
        loaded["alive_after"] = server.poll() is None
    finally:
        server.terminate()
        server.wait(timeout=30)

    corpus_options = ["--max-body-mb", str(CORPUS_LIMITS.max_body_bytes / 1024 / 1024),
                      "--max-megapixels", str(CORPUS_LIMITS.max_pixels / 1e6),
                      "--max-images", str(CORPUS_LIMITS.max_images)]  # fmt: skip
    server, url = start_server(args.model, corpus_options)
    try:
        rss_before = memory_kb(server.pid, "VmRSS")
        abused = abuse(url, paths[0], args.abuse_rounds)
        abused["rss_before_gb"] = round(rss_before / 1024**2, 3)
        abused["rss_after_gb"] = round(memory_kb(server.pid, "VmRSS") / 1024**2, 3)
        abused["server_peak_rss_gb"] = round(memory_kb(server.pid, "VmHWM") / 1024**2, 3)
    finally:
        server.terminate()
        server.wait(timeout=30)

    result = {
        "model": args.model,
        "clients": args.clients,
        "seconds": args.seconds,
        "image": "validation captcha PNGs, 600x320, one per request",
        "load": loaded,
        "model_input": model_input.tag,
        "load_model_input_png": loaded_small,
        "decode_resize_ms_600x320": decode_ms(payloads, model_input),
        "abuse": abused,
        "cpu_count": os.cpu_count(),
        **made_by,
    }
    write_text_atomically(RESULTS / "serve.json", json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
