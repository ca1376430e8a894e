"""imcaption: images to text with an attention encoder-decoder.

`from imcaption import Recognizer, Captioner` loads torch only when first used, so `imcaption --help` stays fast.
"""

from typing import Any

__version__ = "0.2.0"
__all__ = ["Recognizer", "Reading", "Captioner", "Caption", "__version__"]


def __getattr__(name: str) -> Any:
    if name in ("Recognizer", "Reading", "Captioner", "Caption"):
        from imcaption import api

        return getattr(api, name)
    raise AttributeError(f"module 'imcaption' has no attribute {name!r}")
