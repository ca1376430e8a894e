"""imcaption: images to text with an attention encoder-decoder."""

__version__ = "0.1.0"
