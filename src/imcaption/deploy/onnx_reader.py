"""Reading captchas with ONNX Runtime from an exported .onnx file (see onnx_export): the graph gives every step's
scores, and this module turns them into words and confidences exactly as the PyTorch greedy search does."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from imcaption.captcha.reading_types import BaseRecognizer, Readings, letter_confidences
from imcaption.engine.model_files import CheckpointError
from imcaption.engine.model_files import is_onnx_file as is_onnx_file  # re-exported: its home before checkpoint.py
from imcaption.images import ImageSize
from imcaption.models import RecognizerConfig
from imcaption.text.char_tokenizer import END, PAD, CharTokenizer

# This reader runs where only the core is installed (ONNX Runtime, NumPy, Pillow): nothing it imports needs torch.
if TYPE_CHECKING:
    from imcaption.engine.search import LexiconTrie

ONNX_FORMAT = "imcaption-onnx-recognizer"
ONNX_FORMAT_VERSION = 1
READABLE_ONNX_VERSIONS = (1,)
GREEDY_ONLY = "an ONNX model decodes greedily, one view per image; for --beam, --lexicon or --views read the checkpoint"


def log_softmax(scores: np.ndarray) -> np.ndarray:
    shifted = scores - scores.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def ids_through_end(tokens: np.ndarray, end: int) -> tuple[list[list[int]], np.ndarray]:
    """Each row of chosen ids (B, T) up to and including its first `end` (all T without one), and how many steps
    that is per row (B,)."""
    is_end = tokens == end
    steps = np.where(is_end.any(axis=1), is_end.argmax(axis=1) + 1, tokens.shape[1])
    return [row[:n].tolist() for row, n in zip(tokens, steps, strict=True)], steps


def greedy_words(logits: np.ndarray) -> tuple[list[list[int]], np.ndarray, np.ndarray, np.ndarray]:
    """Per-step logits (B, T, V) -> token ids up to and including <end>, log-probability of each reading (B,),
    how many steps each reading took (B,), and each step's chosen log-probability (B, T)."""
    log_probs = log_softmax(logits.astype(np.float64))
    tokens = log_probs.argmax(axis=-1)
    best = np.take_along_axis(log_probs, tokens[..., None], axis=-1)[..., 0]
    # Steps up to the first <end> (inclusive) count; a reading without <end> uses every step.
    ids, steps = ids_through_end(tokens, END)
    counted = np.arange(tokens.shape[1])[None, :] < steps[:, None]
    return ids, (best * counted).sum(axis=1), steps, best


def ctc_words(log_probs: np.ndarray) -> tuple[list[list[int]], np.ndarray, list[list[float]]]:
    """CTC best path: the best class per column, repeats merged, blanks dropped; also each emitted character's
    probability (that of the column where its run starts)."""
    classes = log_probs.argmax(axis=-1)
    best = np.take_along_axis(log_probs, classes[..., None], axis=-1)[..., 0].astype(np.float64)
    ids, confidences = [], []
    for row, row_best in zip(classes.tolist(), best, strict=True):
        starts = [i for i, c in enumerate(row) if c != PAD and (i == 0 or c != row[i - 1])]
        ids.append([row[i] for i in starts])
        confidences.append(letter_confidences(ids[-1], row_best[starts]))
    return ids, best.sum(axis=1), confidences


def read_description(session, kind: str = ONNX_FORMAT, versions: tuple[int, ...] = READABLE_ONNX_VERSIONS) -> dict:
    """The model description an imcaption export keeps in its metadata; CheckpointError unless it is a `kind`
    model of one of `versions`."""
    metadata = session.get_modelmeta().custom_metadata_map
    try:
        described = json.loads(metadata["imcaption"])
    except (KeyError, json.JSONDecodeError):
        raise CheckpointError("this ONNX file was not exported by imcaption (no model description)") from None
    if described.get("format") != kind or described.get("format_version") not in versions:
        raise CheckpointError(
            f"ONNX model format {described.get('format')} v{described.get('format_version')} (imcaption "
            f"{described.get('imcaption', '?')}); this reader takes {kind} v{versions}"
        )
    return described


def open_session(path: str | Path, threads: int = 0, spin: bool = True):
    """An ONNX Runtime CPU session for the file at `path`, fully optimized; CheckpointError if it is missing
    or not a readable ONNX model. threads: intra-op threads; 0 lets ONNX Runtime choose (one per core).
    spin=False: idle threads sleep instead of spinning for the next call, which a service wants, where the
    cores between calls belong to the HTTP server."""
    import onnxruntime as ort

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"model not found: {path}")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if not spin:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as err:  # onnxruntime raises its own exception types for damaged files
        raise CheckpointError(f"cannot read ONNX model {path}: {str(err).splitlines()[0]}") from None


class OnnxRecognizer(BaseRecognizer):
    """The same reading API as `Recognizer` (read, inputs, decode), run by ONNX Runtime; greedy decoding only."""

    def __init__(self, session, described: dict) -> None:
        self.session = session
        self.described = described
        self.config = RecognizerConfig.from_dict(described["model_config"])
        self.tokenizer = CharTokenizer.from_dict(described["tokenizer"])
        self.size = ImageSize(**described["image_size"])
        self.grid = tuple(described["grid"]) if described.get("grid") else None
        self.precision = described.get("precision", "fp32")  # "int8": convolutions quantized by `export --int8`

    @classmethod
    def load(cls, path: str | Path, threads: int = 0, spin: bool = True) -> OnnxRecognizer:
        """threads: ONNX Runtime intra-op threads; 0 lets ONNX Runtime choose (one per physical core); spin: as
        `open_session`."""
        session = open_session(path, threads, spin)
        return cls(session, read_description(session))

    def scores(self, pixels: np.ndarray) -> dict[str, np.ndarray]:
        """The graph's raw outputs for (B, H, W, 3) uint8 model inputs, by output name."""
        names = [output.name for output in self.session.get_outputs()]
        outputs = self.session.run(names, {"images": np.ascontiguousarray(pixels, dtype=np.uint8)})
        return dict(zip(names, outputs, strict=True))

    def lexicon(self, words: Iterable[str]) -> LexiconTrie:
        """Refused at once: the graph decodes greedily, and a trie (a torch tensor) would need the 'train' extra."""
        raise ValueError(GREEDY_ONLY)

    def decode_pixels(
        self, pixels: np.ndarray, beam: int = 1, lexicon: LexiconTrie | None = None, views: int = 1
    ) -> Readings:
        if beam != 1 or lexicon is not None or views != 1:
            raise ValueError(GREEDY_ONLY)
        out = self.scores(pixels)
        if "log_probs" in out:
            ids, log_conf, char_confidences = ctc_words(out["log_probs"])
            attention = None
        else:
            ids, log_conf, steps, step_best = greedy_words(out["logits"])
            longest = int(steps.max()) if len(steps) else 0
            # As the PyTorch search, which stops once every reading has ended.
            attention = out["attention"][:, :longest].reshape(len(ids), longest, *self.grid)
            char_confidences = [letter_confidences(row, best) for row, best in zip(ids, step_best, strict=True)]
        words = [self.tokenizer.decode(row) for row in ids]
        return Readings(words, np.exp(log_conf).tolist(), attention, char_confidences)
