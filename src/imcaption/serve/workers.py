"""Running the service in one process or several. Each worker process loads its own model and serves the port,
so one request's HTTP handling never waits for another's model call to give back the Python interpreter: on 2
cores a single process topped out with its event loop busy and a core partly idle.

On Linux each worker listens on a socket of its own (SO_REUSEPORT) under a small supervisor here; elsewhere
uvicorn's supervisor runs the workers on one shared socket. Worker processes are spawned, so the settings reach
them through the environment."""

from __future__ import annotations

import functools
import math
import multiprocessing
import multiprocessing.connection
import os
import signal
import socket
import sys
from concurrent.futures import ProcessPoolExecutor
from typing import TYPE_CHECKING, Any

from imcaption.serve.limits import ServiceLimits
from imcaption.serve.settings import ServeSettings

if TYPE_CHECKING:
    from fastapi import FastAPI

    from imcaption.serve.models import ServedModel

SETTINGS_VARIABLE = "IMCAPTION_SERVE_SETTINGS"
PR_SET_PDEATHSIG = 1  # linux/prctl.h
# Batch sizes run once at start, so that no request pays for building a size's kernels.
WARM_UP_BATCHES = 16


def load_for_serving(settings: ServeSettings) -> ServedModel:
    """The model with this process's share of the cores, the batch sizes it meets most already run once."""
    import numpy as np

    from imcaption.serve.models import load_served_model

    try:
        import torch
    except ModuleNotFoundError:  # an .onnx model served with the core and the 'serve' extra: no torch to set up
        pass
    else:
        torch.set_num_threads(settings.model_threads)
    model = load_served_model(settings.model, settings.backend, settings.model_threads)
    size = model.size
    blank = np.zeros((min(settings.limits.max_batch, WARM_UP_BATCHES), size.height, size.width, 3), np.uint8)
    for count in range(1, len(blank) + 1):
        model.run(blank[:count])
    model.info["worker_processes"] = settings.workers
    return model


def app_from_environment() -> FastAPI:
    """uvicorn's app factory in each worker process."""
    from imcaption.serve.app import create_app

    settings = ServeSettings.from_json(os.environ[SETTINGS_VARIABLE])
    return create_app(load_for_serving(settings), settings.limits)


def uvicorn_options(limits: ServiceLimits) -> dict[str, Any]:
    """uvicorn's keyword settings for the service: one place, so that the three ways `serve` starts uvicorn (one
    process, its own supervisor's workers, uvicorn's) agree."""
    from imcaption.serve.protocol import GuardedHttpProtocol

    return {
        # A partial, not a subclass made here: uvicorn's own supervisor pickles it into each worker process.
        "http": functools.partial(GuardedHttpProtocol, header_timeout=limits.header_timeout_s),
        "limit_concurrency": limits.max_connections,
        "timeout_keep_alive": limits.keep_alive_s,
        # A request in progress is answered or refused within its deadline; a stop waits that long, not for ever.
        "timeout_graceful_shutdown": math.ceil(limits.deadline_ms / 1000) + 1,
    }


def model_info(settings: ServeSettings) -> dict:
    """What the service would serve (model kind, backend, input size); raises what loading the model raises."""
    from imcaption.serve.models import load_served_model

    return load_served_model(settings.model, settings.backend, 1).info


def serve(settings: ServeSettings, host: str, port: int, log_level: str) -> None:
    """Serve until interrupted: in this process for one worker, else in `settings.workers` processes under a
    supervisor that holds no model."""
    import uvicorn

    if settings.workers == 1:
        from imcaption.serve.app import create_app

        model = load_for_serving(settings)
        _announce(settings, model.info, host, port)
        uvicorn.run(create_app(model, settings.limits), host=host, port=port, log_level=log_level,
                    **uvicorn_options(settings.limits))  # fmt: skip
        return
    # Port 0 would give each worker a port of its own; the kernel spreads connections this way on Linux only.
    own_sockets = port != 0 and hasattr(socket, "SO_REUSEPORT") and sys.platform == "linux"
    if own_sockets:
        check_port_free(host, port)
    # The model is loaded once in a passing process first: a bad model then stops the command with one clear
    # error, rather than every worker failing; and the supervisor stays free of the model.
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as check:
        _announce(settings, check.submit(model_info, settings).result(), host, port)
    os.environ[SETTINGS_VARIABLE] = settings.to_json()  # the worker processes inherit it
    if own_sockets:
        supervise(settings.workers, host, port, log_level)
    else:
        uvicorn.run(f"{__name__}:app_from_environment", factory=True, workers=settings.workers, host=host, port=port,
                    log_level=log_level, **uvicorn_options(settings.limits))  # fmt: skip


def check_port_free(host: str, port: int) -> None:
    """OSError naming the address unless it is free. The workers' SO_REUSEPORT sockets would join another
    server's on the same port (of the same user) without a word, so that is ruled out first."""
    with socket.socket(_family(host), socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a port a server just left is free
        try:
            probe.bind((host, port))
        except OSError as err:
            raise OSError(err.errno, f"cannot listen on {host}:{port}: {err.strerror}") from None


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def listening_socket(host: str, port: int) -> socket.socket:
    """A listening socket of this worker's own on the shared port: with SO_REUSEPORT the kernel spreads new
    connections over the workers' sockets. One socket shared by all the workers (uvicorn's way) lets whichever
    worker wakes first accept a whole burst of connections, and keep-alive clients then stay with it: under 16
    clients one worker often had every connection and the other core sat idle."""
    sock = socket.socket(_family(host), socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(2048)
    return sock


def run_worker(host: str, port: int, log_level: str) -> None:
    """One worker process: its own model, then its own socket, uvicorn until told to stop. The socket comes after
    the model, because the kernel hands a listening socket its share of new connections at once: while the model
    loaded, they would wait for it."""
    import uvicorn

    stop_with_parent()
    limits = ServeSettings.from_json(os.environ[SETTINGS_VARIABLE]).limits
    app = app_from_environment()
    sock = listening_socket(host, port)
    config = uvicorn.Config(app, host=host, port=port, log_level=log_level, **uvicorn_options(limits))
    uvicorn.Server(config).run(sockets=[sock])


def stop_with_parent() -> None:
    """Have the kernel send this process SIGTERM when its parent, the supervisor, dies, however it dies (killed,
    out of memory), so that no worker is left holding the port. Linux only (prctl PR_SET_PDEATHSIG)."""
    import ctypes

    parent = os.getppid()
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:  # the supervisor died before the request took effect
        os.kill(os.getpid(), signal.SIGTERM)


def supervise(workers: int, host: str, port: int, log_level: str) -> None:
    """Run `workers` worker processes until interrupted or until one of them stops; then stop the others.
    A worker that stops on its own (killed, out of memory) stops the service with an error, rather than leaving
    a share of the connections to a port nobody answers."""
    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=run_worker, args=(host, port, log_level), name=f"imcaption-worker-{n}")
                 for n in range(workers)]  # fmt: skip
    for process in processes:
        process.start()
    # Ctrl-C and `kill` stop the workers too (uvicorn in each answers both signals, so this does as well, even
    # where a shell started it with Ctrl-C ignored).
    previous = {signum: signal.signal(signum, _interrupt) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        ended = multiprocessing.connection.wait([process.sentinel for process in processes])
        # Its sentinel closes as it exits, a moment before its exit code can be collected: join waits for that.
        stopped = next(process for process in processes if process.sentinel in ended)
        stopped.join()
        raise ChildProcessError(f"worker process {stopped.pid} stopped (exit code {stopped.exitcode}); "
                                "stopping the service")  # fmt: skip
    except KeyboardInterrupt:
        pass
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        for process in processes:
            if process.is_alive():
                process.terminate()  # SIGTERM: uvicorn's graceful shutdown
        for process in processes:
            process.join(timeout=30)
            if process.is_alive():
                process.kill()


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _announce(settings: ServeSettings, info: dict, host: str, port: int) -> None:
    processes = f", {settings.workers} worker processes" if settings.workers > 1 else ""
    print(f"serving {settings.model} ({info['model']}, {info['backend']}{processes}) on http://{host}:{port}/",
          flush=True)  # fmt: skip
