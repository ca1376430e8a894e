"""The Python API: `Recognizer` reads captchas, `Captioner` captions images.

Example: `Recognizer.load("runs/captcha/best.pt").read("a8.png")` gives a `Reading` (word, confidence,
attention); `Captioner.load("runs/scenes/best.pt").caption(["x.png", "y.jpg"], beam=3)` a list of `Caption`.
"""

from imcaption.captcha.recognizer import Reading, Recognizer
from imcaption.captioning.captioner import Caption, Captioner

__all__ = ["Recognizer", "Reading", "Captioner", "Caption"]
