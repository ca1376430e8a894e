"""imcaption: images to text with an attention encoder-decoder.

`from imcaption import Recognizer, Captioner` loads the API when first used, and the API loads torch only for a
PyTorch model file: `Recognizer.load("model.onnx")` reads with the core alone (ONNX Runtime, NumPy, Pillow).
"""

from typing import Any

from imcaption.version import __version__

__all__ = ["Recognizer", "Reading", "Captioner", "Caption", "__version__"]


def __getattr__(name: str) -> Any:
    if name in ("Recognizer", "Reading", "Captioner", "Caption"):
        from imcaption import api

        return getattr(api, name)
    raise AttributeError(f"module 'imcaption' has no attribute {name!r}")
