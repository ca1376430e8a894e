"""Soak test of `imcaption serve` on loopback: a steady load for minutes, checked answer by answer.

    python -m bench.soak runs/bench_sat_60/best.pt --minutes 10 --name sat_60   # -> bench/results/soak_sat_60.json
    python -m bench.soak MODEL --minutes 10 -- --workers 1 --max-queue 64       # options after -- go to the server

Starts the service as its own process with its defaults (the command a user runs), measures its capacity with
a short closed-loop probe (16 keep-alive clients, each sending the next request as soon as its answer arrives),
then sends requests at a fixed rate, --load of that capacity (default half: a load the service should carry
for ever with its latency flat) unless --rate names one, for --minutes. A fixed rate rather than a fixed number
of clients: clients that wait for each answer slow down as the server does, so
a server that degrades over the minutes would be offered less work and look steady; at a fixed rate the offered
load is the same in the last minute as in the first, and each latency runs from the moment its request was due
(a request that waited for a free connection waited all the same).

The requests: captcha PNGs (generated here, 600x320, as the dataset stores them), each with the word
`imcaption.Recognizer.load(MODEL)` reads offline, so that every answer is checked; and, one request in ten, a bad
upload that must get its 4xx error code: a truncated PNG, a text file, an EPS file named .png, an image over the
service's pixel limit. Recorded: requests, counts by status code, wrong answers (a 200 whose word differs, a bad
upload answered otherwise than its code, any other status), p50/p99 latency per minute, the server's RSS (the
supervisor and its workers together) at the start and the end, and whether it still answers afterwards.

The load client here (keep-alive HTTP/1.1 over asyncio streams, parsing no more than the status line and the
headers) is light enough to share 2 cores with the server; tests/test_serve_overload.py drives the service
with it too.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import math
import random
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):  # run as a file, not with -m: make `bench` importable all the same
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

RESULTS = Path(__file__).parent / "results"
PROBE_CLIENTS, PROBE_SECONDS = 16, 10.0
CONNECTIONS = 256  # most connections the load client opens: under the service's default limit of 512
BAD_SHARE = 0.1
CAPTCHAS = 64


@dataclass(frozen=True)
class Upload:
    kind: str  # "captcha" or what is wrong with it
    body: bytes
    content_type: str
    status: int  # the status it must get
    expected: str  # the word a captcha must be read as, or the error code a bad upload must get

    def request(self, host: str) -> bytes:
        head = (f"POST /v1/read HTTP/1.1\r\nHost: {host}\r\nContent-Type: {self.content_type}\r\n"
                f"Content-Length: {len(self.body)}\r\n\r\n")  # fmt: skip
        return head.encode() + self.body

    def correct(self, status: int, answer: dict) -> bool:
        if status != self.status:
            return False
        return answer.get("word") == self.expected if status == 200 else error_code(answer) == self.expected


@dataclass
class Answer:
    kind: str
    due: float  # seconds from the start of the run when it was due
    queued: float  # seconds it waited for a free connection
    latency: float  # seconds from due to the whole answer
    status: int  # 0: the connection failed or closed without an answer
    correct: bool
    code: str  # the error code of a JSON error, "" for none, "?" for an answer that is not the service's JSON
    retry_after: str | None  # the Retry-After header
    service: float | None  # seconds the service says it spent (Server-Timing), from the body's arrival


def service_seconds(headers: dict[str, str]) -> float | None:
    """`Server-Timing: service;dur=12.5` -> 0.0125."""
    for metric in headers.get("server-timing", "").split(","):
        name, _, duration = metric.strip().partition(";dur=")
        if name == "service" and duration:
            return float(duration) / 1000
    return None


def error_code(answer: object) -> str:
    if not isinstance(answer, dict):
        return "?"
    return answer["error"]["code"] if isinstance(answer.get("error"), dict) else ""


class Connection:
    """One keep-alive HTTP/1.1 connection. `exchange` sends a whole request, returns (status, body); the server's
    answers always carry a Content-Length, which is all that is parsed beyond the status line."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer, self.open = reader, writer, True

    @classmethod
    async def connect(cls, host: str, port: int) -> Connection:
        return cls(*await asyncio.open_connection(host, port))

    async def exchange(self, request: bytes) -> tuple[int, dict[str, str], bytes]:
        self.writer.write(request)
        await self.writer.drain()
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        fields = (line.partition(":") for line in lines[1:] if line)
        headers = {name.lower(): value.strip() for name, _, value in fields}
        body = await self.reader.readexactly(int(headers.get("content-length", 0)))
        if headers.get("connection", "").lower() == "close":
            self.close()
        return status, headers, body

    def close(self) -> None:
        self.open = False
        self.writer.close()


class Pool:
    """At most `size` connections, reused while the server keeps them open: one idle for `keep_alive` seconds is
    closed instead, since the server may be closing it at that very moment (its keep-alive timeout) and a request
    sent then would be lost to the race."""

    def __init__(self, host: str, port: int, size: int, keep_alive: float = 4.0) -> None:
        self.host, self.port, self.keep_alive = host, port, keep_alive
        self.idle: list[tuple[Connection, float]] = []  # with the time each became idle
        self.slots = asyncio.Semaphore(size)

    def reuse(self) -> Connection | None:
        while self.idle:
            connection, since = self.idle.pop()
            if time.monotonic() - since < self.keep_alive:
                return connection
            connection.close()
        return None

    async def exchange(self, request: bytes) -> tuple[int, dict[str, str], bytes, float]:
        """(status, headers, body, seconds waited for a connection); status 0 if the connection failed."""
        asked = time.monotonic()
        async with self.slots:
            waited = time.monotonic() - asked
            connection = self.reuse()
            try:
                connection = connection or await Connection.connect(self.host, self.port)
                status, headers, body = await connection.exchange(request)
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError, IndexError):
                if connection is not None:
                    connection.close()
                return 0, {}, b"", waited
            if connection.open:
                self.idle.append((connection, time.monotonic()))
            return status, headers, body, waited

    def close(self) -> None:
        for connection, _ in self.idle:
            connection.close()
        self.idle.clear()


async def send(pool: Pool, upload: Upload, due: float, start: float, answers: list[Answer]) -> None:
    status, headers, body, waited = await pool.exchange(upload.request(pool.host))
    try:
        answer = json.loads(body)
        code, correct = error_code(answer), upload.correct(status, answer)
    except (ValueError, KeyError, TypeError):  # not the JSON the service answers
        code, correct = "?", False
    latency = time.monotonic() - due
    answers.append(Answer(upload.kind, due - start, waited, latency, status, correct, code, headers.get("retry-after"),
                          service_seconds(headers)))  # fmt: skip


async def at_rate(host: str, port: int, uploads: Sequence[Upload], rate: float, seconds: float,
                  connections: int = CONNECTIONS, keep_alive: float = 4.0, seed: int = 0) -> list[Answer]:  # fmt: skip
    """Requests due every 1/rate seconds for `seconds` (an open loop: none waits for another's answer), each a
    random pick of `uploads`; every answer. `keep_alive`: under the server's keep-alive timeout."""
    pool, picks = Pool(host, port, connections, keep_alive), random.Random(seed)
    answers: list[Answer] = []
    in_flight: set[asyncio.Task] = set()  # only the unanswered: a 10-minute run must not keep every task
    start = time.monotonic()
    for n in range(math.ceil(rate * seconds)):
        due = start + n / rate
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        task = asyncio.create_task(send(pool, picks.choice(uploads), due, start, answers))
        in_flight.add(task)
        task.add_done_callback(in_flight.discard)
    await asyncio.gather(*in_flight)
    pool.close()
    return sorted(answers, key=lambda answer: answer.due)


async def closed_loop(host: str, port: int, uploads: Sequence[Upload], clients: int, seconds: float) -> float:
    """Answers (200) per second to `clients` keep-alive clients, each sending its next request on an answer."""
    pool, ok, end = Pool(host, port, clients), 0, time.monotonic() + seconds
    start = time.monotonic()

    async def client(n: int) -> None:
        nonlocal ok
        while time.monotonic() < end:
            status, *_ = await pool.exchange(uploads[n % len(uploads)].request(host))
            ok += status == 200
            n += clients

    await asyncio.gather(*(client(n) for n in range(clients)))
    pool.close()
    return ok / (time.monotonic() - start)


def quantile_ms(latencies: list[float], q: float) -> float | None:
    if not latencies:
        return None
    ordered = sorted(latencies)
    return round(1000 * ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)], 1)


def summary(answers: list[Answer]) -> dict:
    """Counts, wrong answers by kind, and p50/p99 latency of the answered requests per minute."""
    minutes = []
    for minute in range(math.ceil(max((a.due for a in answers), default=0) / 60 + 1e-9) or 1):
        within = [a.latency for a in answers if minute * 60 <= a.due < (minute + 1) * 60 and a.status]
        minutes.append({"minute": minute + 1, "requests": len(within), "p50_ms": quantile_ms(within, 0.5),
                        "p99_ms": quantile_ms(within, 0.99)})  # fmt: skip
    wrong = Counter(a.kind for a in answers if not a.correct)
    return {
        "requests": len(answers),
        "by_status": {str(k): v for k, v in sorted(Counter(a.status for a in answers).items())},
        "by_error_code": dict(sorted(Counter(a.code for a in answers if a.code).items())),
        "by_kind": dict(sorted(Counter(a.kind for a in answers).items())),
        "wrong_answers": sum(wrong.values()),
        "wrong_by_kind": dict(sorted(wrong.items())),
        "p50_ms": quantile_ms([a.latency for a in answers if a.status], 0.5),
        "p99_ms": quantile_ms([a.latency for a in answers if a.status], 0.99),
        "service_p99_ms": quantile_ms([a.service for a in answers if a.service is not None], 0.99),
        "most_waited_for_a_connection_ms": round(1000 * max((a.queued for a in answers), default=0), 1),
        "per_minute": minutes,
    }


def png_bytes(image: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")  # type: ignore[attr-defined]
    return buffer.getvalue()


def bad_uploads(real: bytes, max_pixels: int) -> list[Upload]:
    """Uploads the service must refuse, each with its status and error code."""
    from PIL import Image

    side = math.isqrt(max_pixels) + 1  # one pixel row more than the limit allows: a real, decodable image
    eps = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n"
    return [
        Upload("truncated png", real[: len(real) // 3], "image/png", 422, "not_an_image"),
        Upload("text file", *multipart("notes.txt", b"hello, this is a text file\n" * 20), 422, "not_an_image"),
        Upload("eps named .png", *multipart("drawing.png", eps), 422, "not_an_image"),
        Upload("oversized image", png_bytes(Image.new("L", (side, side), 255)), "image/png", 413, "image_too_large"),
    ]


def multipart(filename: str, data: bytes) -> tuple[bytes, str]:
    """A one-file multipart/form-data body, as a browser form sends it, and its Content-Type."""
    boundary = "soak-boundary-7f3a"
    body = (f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="{filename}"\r\n'
            f"Content-Type: image/png\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()  # fmt: skip
    return body, f"multipart/form-data; boundary={boundary}"


def captcha_uploads(model: str, folder: Path, count: int = CAPTCHAS) -> list[Upload]:
    """`count` generated captchas, half as raw bodies and half as multipart, each with its offline reading."""
    from imcaption.api import Recognizer
    from imcaption.captcha.generator import generate_dataset
    from imcaption.captcha.vocabulary import default_vocabulary

    generate_dataset(folder, default_vocabulary(), count=count, seed=5, workers=1, progress=False)
    paths = sorted(folder.glob("a*.png"), key=lambda p: int(p.stem[1:]))
    readings = Recognizer.load(model).read(paths)
    uploads = []
    for n, (path, reading) in enumerate(zip(paths, readings, strict=True)):
        data = path.read_bytes()
        body, content_type = multipart(path.name, data) if n % 2 else (data, "image/png")
        uploads.append(Upload("captcha", body, content_type, 200, reading.word))
    return uploads


def mix(captchas: list[Upload], bad: list[Upload]) -> list[Upload]:
    """A list to pick from at random in which BAD_SHARE of the picks are bad uploads, each kind as often."""
    copies = round(len(captchas) * BAD_SHARE / (1 - BAD_SHARE) / len(bad)) or 1
    return captchas + bad * copies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", help="a recognizer: a checkpoint or an .onnx file")
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--load", type=float, default=0.5, help="the rate as a share of the probed capacity")
    parser.add_argument("--rate", type=float, help="requests per second, instead of --load of the capacity")
    parser.add_argument("--name", help="write soak_<name>.json rather than soak.json")
    parser.add_argument("--shared", action="store_true", help="record that other work shared the cores")
    argv = sys.argv[1:]
    split = argv.index("--") if "--" in argv else len(argv)  # what follows `--` goes to `imcaption serve`
    args, options = parser.parse_args(argv[:split]), argv[split + 1 :]
    result = run(args, options)
    name = f"soak_{args.name}.json" if args.name else "soak.json"
    from imcaption.files import write_text_atomically

    write_text_atomically(RESULTS / name, json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "per_minute"}, indent=2))


def run(args: argparse.Namespace, options: list[str]) -> dict:
    from bench.provenance import provenance
    from bench.serve import start_server, tree_memory_gb

    made_by = provenance(args.shared)
    with tempfile.TemporaryDirectory() as folder:
        captchas = captcha_uploads(args.model, Path(folder) / "captchas")
    server, url = start_server(args.model, options)
    try:
        import httpx

        served = httpx.get(f"{url}/healthz").json()
        uploads = mix(captchas, bad_uploads(captchas[0].body, served["limits"]["max_pixels"]))
        host, port = url.removeprefix("http://").split(":")
        capacity = asyncio.run(closed_loop(host, int(port), captchas, PROBE_CLIENTS, PROBE_SECONDS))
        rate = args.rate or round(args.load * capacity, 1)
        rss_start = tree_memory_gb(server.pid, "VmRSS")
        keep_alive = max(0.5, served["limits"]["keep_alive_s"] - 1)
        answers = asyncio.run(at_rate(host, int(port), uploads, rate, args.minutes * 60, keep_alive=keep_alive))
        rss_end = tree_memory_gb(server.pid, "VmRSS")
        peak = tree_memory_gb(server.pid, "VmHWM")
        after = httpx.get(f"{url}/healthz", timeout=10)
        alive = server.poll() is None and after.status_code == 200
        load = after.json().get("load") if alive else None
    finally:
        server.terminate()
        server.wait(timeout=30)
    return {
        "model": args.model,
        "server": {key: served[key] for key in ("backend", "worker_processes", "input") if key in served},
        "serve_options": options,
        "limits": served["limits"],
        "load": f"a fixed rate, open loop: {rate:g} requests/s" + ("" if args.rate else f", {args.load:g} x probe"),
        "probe": {"clients": PROBE_CLIENTS, "seconds": PROBE_SECONDS, "answers_per_s": round(capacity, 1)},
        "rate_per_s": rate,
        "minutes": args.minutes,
        "uploads": {
            "captchas": len(captchas),
            "bad_share": BAD_SHARE,
            "bad_kinds": sorted({u.kind for u in uploads} - {"captcha"}),
            "expected": "imcaption.Recognizer.load(MODEL).read, offline",
        },
        "client": f"asyncio keep-alive HTTP/1.1, at most {CONNECTIONS} connections",
        **summary(answers),
        "server_rss_start_gb": rss_start,
        "server_rss_end_gb": rss_end,
        "server_peak_rss_gb": peak,
        "alive_after": alive,
        "server_load_after": load,
        **made_by,
    }


if __name__ == "__main__":
    main()
