"""Which extra installs a missing module, and the one message that says so.

`pip install imcaption` is the core: it reads exported .onnx captcha models with ONNX Runtime, NumPy and Pillow.
Training, generating captchas, captioning, serving and exporting each come with an extra (pyproject.toml's
optional-dependencies). A command or an import that reaches a module of a missing extra says which extra to
install, instead of a traceback ending in "No module named 'torch'".
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

# The top-level modules (import names) of each extra's packages, in the order a missing module is looked up when
# the command names no extra of its own: the first extra that has it is the one named. Font packages are left
# out: their files are found through package metadata, never imported (captcha/fonts.py names the extra itself).
# tests/test_extras.py checks these against pyproject.toml.
_TRAIN = frozenset({"torch", "safetensors", "tqdm", "matplotlib", "rapidfuzz"})
EXTRA_MODULES: dict[str, frozenset[str]] = {
    "train": _TRAIN,
    "generate": frozenset({"imagecodecs", "tqdm"}),
    "faces": frozenset({"imagecodecs", "tqdm"}),  # generate's, and the universal style's font packages
    "caption": _TRAIN | {"pycocoevalcap"},
    "export": _TRAIN | {"onnx", "onnxscript"},
    "serve": frozenset(
        {"fastapi", "fastapi_offline", "starlette", "uvicorn", "httptools", "uvloop", "multipart", "imagecodecs"}
    ),
    "families": frozenset({"captcha", "multicolorcaptcha"}),
}


class MissingExtra(ModuleNotFoundError):
    """A module of an extra that is not installed; the message names the extra and how to install it. `name`
    stays the missing module's, as for any ModuleNotFoundError."""

    def __init__(self, what: str, extra: str, module: str | None) -> None:
        super().__init__(install_hint(what, extra), name=module)
        self.extra = extra


def extra_for(module: str | None, preferred: Sequence[str] = ()) -> str | None:
    """The extra that installs `module` (a ModuleNotFoundError's `name`, dotted or not): the first of
    `preferred` that has its top-level package, else the first extra that does; None for a module no extra
    installs (then the error is a real one, not a missing extra)."""
    top = (module or "").partition(".")[0]
    having = [extra for extra, modules in EXTRA_MODULES.items() if top in modules]
    return next((extra for extra in preferred if extra in having), having[0] if having else None)


def install_hint(what: str, extra: str) -> str:
    """The one line that says so: WHAT needs the 'EXTRA' extra: pip install 'imcaption[EXTRA]'."""
    return f"{what} needs the '{extra}' extra: pip install 'imcaption[{extra}]'"


@contextmanager
def needs_extra(what: str, *preferred: str) -> Iterator[None]:
    """Inside the block, a missing module of an extra becomes a MissingExtra that names the extra (the first of
    `preferred` that has the module, else the first that does); any other ImportError passes unchanged."""
    try:
        yield
    except MissingExtra:
        raise
    except ModuleNotFoundError as err:
        extra = extra_for(err.name, preferred)
        if extra is None:
            raise
        raise MissingExtra(what, extra, err.name) from err
