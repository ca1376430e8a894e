"""Bad requests a public endpoint receives, each with the 4xx status and error code the service must answer:
shared by the service tests (tests/test_serve.py) and the load bench (bench/serve.py)."""

from __future__ import annotations

import io
import struct
import zlib

from PIL import Image

from imcaption.serve.limits import ServiceLimits

# The limits the corpus is written against: a 400 KB body, 5 images and a 1200x1000 image are each over one.
CORPUS_LIMITS = ServiceLimits(max_body_bytes=300_000, max_pixels=1_000_000, max_images=4)


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims width x height: decoding it all would take gigabytes."""
    header = _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
    return b"\x89PNG\r\n\x1a\n" + header + _chunk(b"IDAT", zlib.compress(b"\0" * 64)) + _chunk(b"IEND", b"")


def png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), "white").save(buffer, "PNG")
    return buffer.getvalue()


def saved_as(image_format: str) -> bytes:
    """A small white image in a format Pillow writes but no decode path of the project accepts (ICO, PDF)."""
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), "white").save(buffer, image_format)
    return buffer.getvalue()


PNG = {"content-type": "image/png"}
MULTIPART_X = {"content-type": "multipart/form-data; boundary=x"}
FIELD_ONLY = b'--x\r\nContent-Disposition: form-data; name="field"\r\n\r\nvalue\r\n--x--\r\n'
EPS = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n"
NAMELESS = b"--x\r\nContent-Type: image/png\r\n\r\nabc\r\n--x--\r\n"
ABUSE = {
    # name: (request options, expected status, expected error code)
    "zero-byte body": ({"content": b"", "headers": PNG}, 400, "empty_body"),
    "zero-byte file": ({"files": {"image": b""}}, 422, "empty_image"),
    "not an image": ({"files": {"image": b"hello, this is text"}}, 422, "not_an_image"),
    "truncated png": ({"files": lambda real: {"image": real.read_bytes()[:3000]}}, 422, "not_an_image"),
    "wrong content type": ({"content": b"{}", "headers": {"content-type": "text/json"}}, 415, "unsupported_media_type"),
    "no content type": ({"content": b"abc"}, 415, "unsupported_media_type"),
    "multipart without a file": ({"content": FIELD_ONLY, "headers": MULTIPART_X}, 400, "no_image"),
    "multipart without a boundary": ({"content": b"--x\r\n", "headers": {"content-type": "multipart/form-data"}},
                                     400, "bad_multipart"),
    "multipart part without a name": ({"content": NAMELESS, "headers": MULTIPART_X}, 400, "bad_multipart"),
    "too many images": ({"files": [("image", b"a")] * 5}, 413, "too_many_images"),
    "declared body too large": ({"content": b"x" * 400_000, "headers": PNG}, 413, "body_too_large"),
    "image too many pixels": ({"files": {"image": png_claiming(50_000, 50_000)}}, 413, "image_too_large"),
    "an EPS file (Ghostscript is never run)": ({"files": {"image": EPS}}, 422, "not_an_image"),
    "an ICO file": ({"files": {"image": saved_as("ICO")}}, 422, "not_an_image"),
    "a PDF file": ({"files": {"image": saved_as("PDF")}}, 422, "not_an_image"),
    "image over the pixel limit": ({"files": {"image": png(1200, 1000)}}, 413, "image_too_large"),
}  # fmt: skip
