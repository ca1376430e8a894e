"""The HTTP service on a real uvicorn server on loopback: readings, micro-batching, limits, the abuse corpus."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import httpx
import numpy as np
import pytest
import uvicorn

from bench.loopback import free_port
from imcaption.api import Recognizer
from imcaption.captcha.dataset import CaptchaDataset
from imcaption.deploy.onnx_export import export_onnx
from imcaption.deploy.onnx_reader import OnnxRecognizer
from imcaption.serve.app import create_app
from imcaption.serve.batcher import MicroBatcher
from imcaption.serve.models import load_served_model
from imcaption.serve.settings import ServeSettings
from imcaption.serve.workers import check_port_free
from tests.abuse_corpus import ABUSE, CORPUS_LIMITS, png

# A long batching window, so that the test of shared model calls does not depend on the machine's speed.
LIMITS = replace(CORPUS_LIMITS, batch_window_ms=30, max_batch=16)


class LiveServer:
    """uvicorn in a thread on a free loopback port; `options` are more of uvicorn.Config's (`uvicorn_options`)."""

    def __init__(self, app, port: int, **options: object) -> None:
        self.url = f"http://127.0.0.1:{port}"
        options = {"log_level": "critical", "timeout_keep_alive": 2, **options}
        config = uvicorn.Config(app, host="127.0.0.1", port=port, **options)  # type: ignore[arg-type]
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *_: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture(scope="module")
def served_onnx(trained_sat: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export_onnx(trained_sat, tmp_path_factory.mktemp("serve") / "sat.onnx")


@pytest.fixture(scope="module")
def server(served_onnx: Path) -> Iterator[LiveServer]:
    with LiveServer(create_app(load_served_model(served_onnx), LIMITS), free_port()) as live:
        yield live


@pytest.fixture(scope="module")
def images(easy_dataset: Path) -> list[Path]:
    dataset = CaptchaDataset.open(easy_dataset)
    return [dataset.image_path(i) for i in list(dataset.split("val").indices)[:20]]


def test_a_reading_matches_the_onnx_reader_with_per_character_confidences(
    server: LiveServer, served_onnx: Path, images: list[Path]
) -> None:
    expected = OnnxRecognizer.load(served_onnx).read(images[:3], attention=True)
    one = httpx.post(f"{server.url}/v1/read", files={"image": images[0].read_bytes()})
    assert one.status_code == 200
    body = one.json()
    assert body["word"] == expected[0].word and body["word"]
    assert body["confidence"] == pytest.approx(expected[0].confidence, abs=1e-5)
    assert "".join(c["char"] for c in body["characters"]) == body["word"]
    assert all(0 < c["confidence"] <= 1 for c in body["characters"])
    raw = httpx.post(f"{server.url}/v1/read", content=images[1].read_bytes(), headers={"content-type": "image/png"})
    assert raw.json()["word"] == expected[1].word
    several = httpx.post(
        f"{server.url}/v1/read?attention=true", files=[("image", p.read_bytes()) for p in images[:3]]
    ).json()["results"]
    assert [r["word"] for r in several] == [r.word for r in expected]
    for result, reading in zip(several, expected, strict=True):
        grids = np.array(result["attention"])
        assert grids.shape == (len(reading.word), *reading.attention.shape[1:])
        np.testing.assert_allclose(grids.sum(axis=(1, 2)), 1.0, atol=1e-3)  # each character's attention sums to 1


def test_health_docs_bad_parameters_and_the_wrong_task(server: LiveServer, images: list[Path]) -> None:
    health = httpx.get(f"{server.url}/healthz").json()
    assert health["status"] == "ok" and health["task"] == "read" and health["backend"] == "onnxruntime"
    assert health["limits"]["max_images"] == LIMITS.max_images
    assert "/v1/read" in httpx.get(f"{server.url}/openapi.json").json()["paths"]
    assert httpx.get(f"{server.url}/docs").status_code == 200
    page = httpx.get(f"{server.url}/")
    assert page.status_code == 200 and "/static/app.js" in page.text
    bad = httpx.post(f"{server.url}/v1/read?attention=maybe", files={"image": images[0].read_bytes()})
    assert bad.status_code == 422 and "attention" in bad.json()["error"]["message"]
    wrong = httpx.post(f"{server.url}/v1/caption", content=b"x", headers={"content-type": "image/png"})
    assert wrong.status_code == 409 and wrong.json()["error"]["code"] == "wrong_task"


def test_concurrent_requests_share_model_calls(server: LiveServer, served_onnx: Path, images: list[Path]) -> None:
    before = httpx.get(f"{server.url}/healthz").json()
    payloads = [p.read_bytes() for p in images[:16]]

    def post(data: bytes) -> str:
        return httpx.post(f"{server.url}/v1/read", files={"image": data}, timeout=30).json()["word"]

    with ThreadPoolExecutor(16) as pool:
        words = list(pool.map(post, payloads))
    after = httpx.get(f"{server.url}/healthz").json()
    # Each request gets its own image's reading back, whichever model call it shared.
    assert words == [r.word for r in OnnxRecognizer.load(served_onnx).read(images[:16])]
    assert after["images"] - before["images"] == 16
    assert after["batches"] - before["batches"] < 16  # some requests were answered by one shared model call


@pytest.mark.parametrize("name", list(ABUSE))
def test_bad_input_gets_a_4xx_json_error_naming_the_problem(name: str, server: LiveServer, images: list[Path]) -> None:
    options, status, code = ABUSE[name]
    options = {key: value(images[0]) if callable(value) else value for key, value in options.items()}
    answer = httpx.post(f"{server.url}/v1/read", **options)
    assert answer.status_code == status, answer.text
    assert answer.json()["error"]["code"] == code and answer.json()["error"]["message"]


def test_chunked_oversized_bodies_huge_headers_and_slow_clients_leave_the_server_up(server: LiveServer) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(40):
            yield b"x" * 10_000  # 400 KB without a Content-Length, over the 300 KB limit

    chunked = httpx.post(f"{server.url}/v1/read", content=chunks(), headers={"content-type": "image/png"})
    assert chunked.status_code == 413 and chunked.json()["error"]["code"] == "body_too_large"
    huge = httpx.get(f"{server.url}/healthz", headers={"x-filler": "a" * 100_000})
    assert 400 <= huge.status_code < 500
    host, port = server.url.removeprefix("http://").split(":")
    slow = [socket.create_connection((host, int(port))) for _ in range(20)]
    for connection in slow:  # headers that never finish, and a body promised but never sent
        connection.sendall(b"POST /v1/read HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nContent-Length: 1000\r\n")
    assert httpx.get(f"{server.url}/healthz", timeout=10).json()["status"] == "ok"
    for connection in slow:
        connection.close()
    assert httpx.post(f"{server.url}/v1/read", files={"image": png(600, 320)}).status_code == 200


def test_a_captioner_is_served_at_v1_caption(tmp_path: Path) -> None:
    from PIL import Image

    from imcaption.api import Captioner
    from imcaption.captioning.task import CaptionTask, CaptionTrainConfig
    from imcaption.cli import main
    from imcaption.engine.loop import Trainer

    data = tmp_path / "scenes"
    assert main(["caption", "scenes", str(data), "--count", "120", "--quiet"]) == 0
    base = CaptionTrainConfig()
    config = replace(base, image_size=64, loop=replace(base.loop, epochs=1, batch_size=16, warmup_steps=5))
    Trainer(CaptionTask(data, config, progress=False), config.loop, tmp_path / "run", progress=False).run()
    model = tmp_path / "run" / "best.pt"
    image = next((data / "images").glob("*.png"))
    expected = Captioner.load(model).caption(Image.open(image), attention=True)
    with LiveServer(create_app(load_served_model(model)), free_port()) as live:
        assert httpx.get(f"{live.url}/healthz").json()["task"] == "caption"
        answer = httpx.post(f"{live.url}/v1/caption?attention=true", files={"image": image.read_bytes()}).json()
        assert answer["caption"] == expected.text
        assert np.array(answer["attention"]).shape == expected.attention.shape
        wrong = httpx.post(f"{live.url}/v1/read", files={"image": image.read_bytes()})
        assert wrong.status_code == 409 and "/v1/caption" in wrong.json()["error"]["message"]


def test_the_pytorch_backend_answers_as_the_recognizer_reads(trained_sat: Path, images: list[Path]) -> None:
    model = load_served_model(trained_sat, "pytorch")
    with LiveServer(create_app(model, LIMITS), free_port()) as live:
        uploads = [("image", p.read_bytes()) for p in images[:4]]
        several = httpx.post(f"{live.url}/v1/read", files=uploads).json()["results"]
        health = httpx.get(f"{live.url}/healthz").json()
    assert health["backend"].startswith("pytorch")
    expected = Recognizer.load(trained_sat).read(images[:4])  # the same reading precision as the service's
    assert [r["word"] for r in several] == [r.word for r in expected] and any(r.word for r in expected)
    for result, reading in zip(several, expected, strict=True):
        assert [c["confidence"] for c in result["characters"]] == pytest.approx(reading.char_confidences, abs=1e-5)


def test_a_request_that_waited_through_a_model_call_does_not_wait_for_another_window() -> None:
    window, call_seconds = 0.4, 0.6

    def slow_model(pixels: np.ndarray) -> list[int]:
        time.sleep(call_seconds)
        return [int(row[0, 0, 0]) for row in pixels]

    async def scenario() -> tuple[list[list[int]], float, int]:
        batcher = MicroBatcher(slow_model, window, max_batch=2)
        batcher.start()
        one = [np.full((1, 2, 2, 3), n, np.uint8) for n in range(3)]
        first = asyncio.create_task(batcher.run(one[0]))  # with one[1], fills the first batch at once
        second = asyncio.create_task(batcher.run(one[1]))
        await asyncio.sleep(0.05)
        start = time.monotonic()
        third = await batcher.run(one[2])  # queued during the first call; its window has passed when it ends
        waited = time.monotonic() - start
        results = [await first, await second, third]
        await batcher.stop()
        return results, waited, batcher.batches

    results, waited, batches = asyncio.run(scenario())
    assert results == [[0], [1], [2]] and batches == 2
    # It waited for the first call and its own, not for a fresh window after the first call on top.
    assert waited < 2 * call_seconds + window / 2


def _workers_answering_a_burst(port: int, connections: int) -> list[int]:
    """Open `connections` connections at once (all of them before any request, as a load generator does), then
    ask /healthz on each: the worker process that accepted each one."""
    sockets = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(connections)]
    workers = []
    try:
        for sock in sockets:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
        for sock in sockets:
            answer = b""
            while chunk := sock.recv(65536):
                answer += chunk
            workers.append(json.loads(answer.split(b"\r\n\r\n", 1)[1])["worker"])
    finally:
        for sock in sockets:
            sock.close()
    return workers


def _running(pid: int) -> bool:
    """Whether process `pid` exists and has not exited (an orphan's zombie waits for whoever reaps it)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _two_workers(command: list[str], model: Path, url: str) -> tuple[subprocess.Popen, set[int]]:
    """The service started with 2 workers, once both answer: the supervisor and the workers' process ids."""
    server = subprocess.Popen([*command, str(model)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    workers: set[int] = set()
    deadline = time.monotonic() + 120
    while len(workers) < 2 and time.monotonic() < deadline and server.poll() is None:
        try:  # a new connection each time, taken by whichever worker accepts it
            health = httpx.get(f"{url}/healthz", timeout=2).json()
            workers.add(health["worker"])
        except httpx.TransportError:
            time.sleep(0.2)
    assert len(workers) == 2 and health["worker_processes"] == 2 and server.pid not in workers
    return server, workers


def test_workers_stop_when_their_supervisor_is_killed(trained_sat: Path) -> None:
    port = free_port()
    command = [sys.executable, "-m", "imcaption", "serve", "--workers", "2", "--port", str(port)]
    server, workers = _two_workers(command, trained_sat, f"http://127.0.0.1:{port}")
    server.kill()  # SIGKILL: the supervisor cannot stop them itself
    server.wait(timeout=30)
    deadline = time.monotonic() + 30
    while any(map(_running, workers)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(map(_running, workers))  # none left holding the port
    check_port_free("127.0.0.1", port)


def test_two_worker_processes_share_a_burst_of_connections_and_stop_together(
    trained_sat: Path, images: list[Path], tmp_path: Path
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "imcaption", "serve", "--workers", "2", "--port", str(port)]
    server, workers = _two_workers(command, trained_sat, url)
    try:
        # Each worker listens on its own socket, so the kernel spreads a burst over both; with one shared socket
        # the worker that woke first often took all 16 (and kept them, with keep-alive clients).
        assert set(_workers_answering_a_burst(port, 16)) == workers
        words = [httpx.post(f"{url}/v1/read", files={"image": p.read_bytes()}).json()["word"] for p in images[:4]]
        assert words == [r.word for r in Recognizer.load(trained_sat).read(images[:4])]
        # A worker that dies stops the service with an error, rather than leaving half the connections unanswered.
        os.kill(min(workers), signal.SIGKILL)
        code, errors = server.wait(timeout=60), server.stderr.read()
        assert code == 2 and f"worker process {min(workers)} stopped" in errors, errors
        assert not any(map(_running, workers))
    finally:
        server.terminate()
        server.wait(timeout=30)
    bad = tmp_path / "bad.pt"
    bad.write_text("not a model")
    # The model is checked once before any worker starts, rather than by workers failing over and over.
    done = subprocess.run([*command, str(bad)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and f"cannot read model file {bad}" in done.stderr


def test_a_taken_port_is_refused_by_name() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(OSError, match=f"cannot listen on 127.0.0.1:{port}"):
            check_port_free("127.0.0.1", port)
    check_port_free("127.0.0.1", port)  # free again once closed


def test_serve_settings_travel_to_the_workers_intact() -> None:
    settings = ServeSettings("m.pt", "onnxruntime", replace(LIMITS, max_batch=7), workers=3)
    assert ServeSettings.from_json(settings.to_json()) == settings
    with pytest.raises(ValueError, match="workers must be at least 1"):
        ServeSettings("m.pt", workers=0)
    with pytest.raises(ValueError, match="backend must be one of auto, pytorch, onnxruntime"):
        ServeSettings("m.pt", backend="tensorflow")


def test_the_docs_pages_load_every_script_and_style_from_this_server(server: LiveServer) -> None:
    for page in ("/docs", "/redoc"):
        html = httpx.get(f"{server.url}{page}").text
        assets = re.findall(r"""(?:src|href)=["']([^"']+)["']""", html)
        assert len(assets) >= 2 and "://" not in html, (page, assets)  # no CDN, no web font
        for asset in assets:
            assert asset.startswith("/") and httpx.get(f"{server.url}{asset}").status_code == 200, asset
