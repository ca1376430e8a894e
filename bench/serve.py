"""Load and abuse test of `imcaption serve` on loopback.

    python -m bench.serve runs/bench_sat_60/best.pt --clients 16 --seconds 20   # -> bench/results/serve.json

Starts the service as its own process with its defaults (the command a user runs: one worker process per core),
then drives it with wrk (Debian package `wrk`, a C load generator, so that the clients take little of the 2
cores the server runs on): N concurrent connections, each sending one validation captcha per request and the
next as soon as the answer arrives, for T seconds, three passes per round after a few seconds of unrecorded
warm-up; each round records its median pass (by images/s) and every pass. Rounds: the PNGs as the dataset stores
them (600x320) sent as raw bodies; the same as multipart uploads (what a form or `curl -F` sends); and the captchas
resized to the model's input by the client, as raw PNG bodies. Throughput, p50/p95/p99 latency, errors (non-2xx
answers and socket errors) and the server's peak RSS (the supervisor and its workers together). The bench also times
decoding and resizing one 600x320 PNG on one core, the cost every full-size request pays before the model. Then a
second server with the abuse corpus's limits (tests/abuse_corpus.py) receives the corpus --abuse-rounds times:
every answer must be its 4xx, none a 5xx, and the server must still be up, with its RSS before and after. Run it on
an idle machine.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a file, not with -m: make `bench` importable all the same
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx

from bench.loopback import free_port
from bench.timing import PASSES
from imcaption.files import write_text_atomically
from imcaption.images import ImageSize

RESULTS = Path(__file__).parent / "results"
LOAD_SCRIPT = Path(__file__).parent / "serve_load.lua"
WARM_UP_SECONDS = 5.0


def process_tree(pid: int) -> list[int]:
    """`pid` and its descendants (the service's worker processes)."""
    children = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        children += [int(c) for c in (task / "children").read_text().split()]
    return [pid, *(p for child in children for p in process_tree(child))]


def tree_memory_gb(pid: int, field: str) -> float:
    """VmRSS or VmHWM summed over the server and its worker processes, in GB."""
    return round(sum(memory_kb(p, field) for p in process_tree(pid)) / 1024**2, 3)


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
    deadline = time.monotonic() + 180  # each worker loads and warms up its model
    seen: set[int] = set()
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the server exited with {server.returncode}")
        try:
            health = httpx.get(f"{url}/healthz", timeout=1).json()
            seen.add(health["worker"])
            if len(seen) == health["worker_processes"]:  # every worker has its model loaded
                return server, url
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    server.kill()
    raise SystemExit("the server did not start")


def run_wrk(url: str, listing: Path, clients: int, seconds: float, multipart: bool) -> dict:
    """One wrk pass: what bench/serve_load.lua prints, in ms and images/s."""
    command = ["wrk", "-t1", f"-c{clients}", f"-d{seconds:g}s", "--timeout", "10s", "-s", str(LOAD_SCRIPT), url, "--",
               str(listing), *(["multipart"] if multipart else [])]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    counts = json.loads(done.stdout.strip().splitlines()[-1])
    ok = counts["requests"] - counts["non_2xx"]
    return {
        "requests": counts["requests"],
        "images_per_s": round(ok / (counts["duration_us"] / 1e6), 1),
        **{f"p{q}_ms": round(counts[f"p{q}_us"] / 1000, 1) for q in (50, 95, 99)},
        "max_ms": round(counts["max_us"] / 1000, 1),
        "errors": counts["non_2xx"] + counts["socket_errors"],
        "non_2xx": counts["non_2xx"],
        "socket_errors": counts["socket_errors"],
    }


def load(url: str, listing: Path, clients: int, seconds: float, multipart: bool = False) -> dict:
    """Warm-up, then PASSES passes of wrk sending the images `listing` names: the median pass by images/s, with
    every pass's figures."""
    run_wrk(url, listing, clients, WARM_UP_SECONDS, multipart)
    passes = [run_wrk(url, listing, clients, seconds, multipart) for _ in range(PASSES)]
    median = sorted(passes, key=lambda result: result["images_per_s"])[len(passes) // 2]
    return {**median, "passes": passes, "body": "multipart/form-data" if multipart else "image/png"}


def image_listing(paths: list[Path], listing: Path) -> Path:
    """`listing`: one image path a line, what bench/serve_load.lua reads."""
    listing.write_text("".join(f"{path.resolve()}\n" for path in paths))
    return listing


def small_pngs(paths: list[Path], size: ImageSize, folder: Path) -> list[Path]:
    """The captchas at the model's input size, as PNG files in `folder`."""
    from PIL import Image

    from imcaption.images import load_image, to_model_input

    out = []
    for n, path in enumerate(paths):
        out.append(folder / f"{n}.png")
        Image.fromarray(to_model_input(load_image(path), size)).save(out[-1], "PNG")
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


def abuse_test(model: str, real: Path, rounds: int, options: list[str]) -> dict:
    """The abuse corpus against a fresh server with the corpus's limits, with the server's memory around it."""
    server, url = start_server(model, options)
    try:
        rss_before = tree_memory_gb(server.pid, "VmRSS")
        abused = abuse(url, real, rounds)
        abused["rss_before_gb"] = rss_before
        abused["rss_after_gb"] = tree_memory_gb(server.pid, "VmRSS")
        abused["server_peak_rss_gb"] = tree_memory_gb(server.pid, "VmHWM")
    finally:
        server.terminate()
        server.wait(timeout=30)
    return abused


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", help="a checkpoint or an .onnx file")
    parser.add_argument("--data", default="data/words_captcha")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each timed pass")
    parser.add_argument("--abuse-rounds", type=int, default=20, help="0 skips the abuse corpus")
    parser.add_argument(
        "--backend",
        choices=["pytorch", "onnxruntime"],
        help="serve with this backend rather than the default (auto); writes serve_<backend>.json",
    )
    parser.add_argument(
        "--name", help="write serve_<name>.json (another machine's run, say) rather than the default file name"
    )
    parser.add_argument(
        "--int8", action="store_true",
        help="serve the checkpoint's int8 export (`imcaption captcha export CKPT --onnx M.onnx --int8 DATA`, "
        "calibrated on --data's training split) instead of the checkpoint",
    )  # fmt: skip
    parser.add_argument("--shared", action="store_true", help="record that other work shared the cores")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("bench.serve drives wrk, a C load generator: install it (Debian: apt-get install wrk)")
    with tempfile.TemporaryDirectory() as folder:
        served_model = args.model
        if args.int8:
            from imcaption.deploy.quantize import export_int8_onnx

            served_model = str(export_int8_onnx(args.model, Path(folder) / "int8.onnx", args.data))
        run(args, served_model)


def run(args: argparse.Namespace, served_model: str) -> None:
    """The load rounds, then the abuse corpus, against `served_model`; the JSON as `args` names it."""

    from bench.provenance import provenance
    from imcaption.api import Recognizer
    from imcaption.captcha.dataset import CaptchaDataset
    from tests.abuse_corpus import CORPUS_LIMITS

    made_by = provenance(args.shared)
    dataset = CaptchaDataset.open(args.data)
    paths = [dataset.image_path(i) for i in list(dataset.split("val").indices)[:256]]
    payloads = [p.read_bytes() for p in paths]

    model_input = Recognizer.load(served_model).size
    server, url = start_server(served_model, ["--backend", args.backend] if args.backend else [])
    try:
        served = httpx.get(f"{url}/healthz").json()
        with tempfile.TemporaryDirectory() as temp:
            folder = Path(temp)
            stored = image_listing(paths, folder / "stored.txt")
            small = image_listing(small_pngs(paths, model_input, folder), folder / "small.txt")
            rounds = {
                "load": load(url, stored, args.clients, args.seconds),
                "load_multipart": load(url, stored, args.clients, args.seconds, multipart=True),
                "load_model_input_png": load(url, small, args.clients, args.seconds),
            }
        server_peak = tree_memory_gb(server.pid, "VmHWM")
        alive = server.poll() is None and httpx.get(f"{url}/healthz").status_code == 200
    finally:
        server.terminate()
        server.wait(timeout=30)

    corpus_options = ["--max-body-mb", str(CORPUS_LIMITS.max_body_bytes / 1024 / 1024),
                      "--max-megapixels", str(CORPUS_LIMITS.max_pixels / 1e6),
                      "--max-images", str(CORPUS_LIMITS.max_images)]  # fmt: skip
    abused = abuse_test(served_model, paths[0], args.abuse_rounds, corpus_options) if args.abuse_rounds else None

    result = {
        "model": args.model,
        "int8_export": args.int8,
        "server": {key: served[key] for key in ("backend", "worker_processes", "input") if key in served},
        "batch_window_ms": served["limits"]["batch_window_ms"],
        "clients": args.clients,
        "client": "wrk, 1 thread, one connection per client, keep-alive",
        "seconds": args.seconds,
        "warm_up_seconds": WARM_UP_SECONDS,
        "image": "validation captcha PNGs, 600x320, one per request",
        **rounds,
        "server_peak_rss_gb": server_peak,
        "alive_after": alive,
        "model_input": model_input.tag,
        "decode_resize_ms_600x320": decode_ms(payloads, model_input),
        "abuse": abused,
        "cpu_count": os.cpu_count(),
        **made_by,
    }
    name = f"serve_{args.name or args.backend}.json" if args.name or args.backend else "serve.json"
    write_text_atomically(RESULTS / name, json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
