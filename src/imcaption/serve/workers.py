"""Running the service in one process or several. Each worker process loads its own model and serves on the
shared socket, so one request's HTTP handling never waits for another's model call to give back the Python
interpreter: on 2 cores a single process topped out with its event loop busy and a core partly idle.

uvicorn starts worker processes from an import string, so the settings reach them through the environment."""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from typing import TYPE_CHECKING

from imcaption.serve.settings import ServeSettings

if TYPE_CHECKING:
    from fastapi import FastAPI

    from imcaption.serve.models import ServedModel

SETTINGS_VARIABLE = "IMCAPTION_SERVE_SETTINGS"
# Batch sizes run once at start, so that no request pays for building a size's kernels (about 10 ms each).
WARM_UP_BATCHES = 16


def load_for_serving(settings: ServeSettings) -> ServedModel:
    """The model with this process's share of the cores, the batch sizes it meets most already run once."""
    import numpy as np
    import torch

    from imcaption.serve.models import load_served_model

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
        uvicorn.run(create_app(model, settings.limits), host=host, port=port, log_level=log_level)
        return
    # The model is loaded once in a passing process first: uvicorn restarts a worker that fails to start, so a bad
    # model would otherwise fail over and over; and the supervisor stays free of the model.
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as check:
        _announce(settings, check.submit(model_info, settings).result(), host, port)
    os.environ[SETTINGS_VARIABLE] = settings.to_json()  # the worker processes inherit it
    uvicorn.run(f"{__name__}:app_from_environment", factory=True, workers=settings.workers, host=host, port=port,
                log_level=log_level)  # fmt: skip


def _announce(settings: ServeSettings, info: dict, host: str, port: int) -> None:
    processes = f", {settings.workers} worker processes" if settings.workers > 1 else ""
    print(f"serving {settings.model} ({info['model']}, {info['backend']}{processes}) on http://{host}:{port}/",
          flush=True)  # fmt: skip
