"""Captioning as a training task: captions and images in any layout of captioning/layouts.py (or cached backbone
features) in, BLEU-4 out."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from imcaption.captioning.coco import CaptionedImage
from imcaption.captioning.features import backbone_features, load_images
from imcaption.captioning.layouts import open_caption_data
from imcaption.captioning.metrics import caption_scores

# The model's spec moved to model_spec.py, which reading shares; CAPTION_TOKENS and caption_grid, unused here, stay
# importable from this module, where they were first defined.
from imcaption.captioning.model_spec import CAPTION_TOKENS as CAPTION_TOKENS
from imcaption.captioning.model_spec import ENCODERS, CaptionModelSpec, build_caption_model, search_captions
from imcaption.captioning.model_spec import caption_grid as caption_grid
from imcaption.captioning.reading_types import CAPTIONER_FORMAT
from imcaption.engine.batches import epoch_batch, gather_sharded
from imcaption.engine.config import LoopConfig, config_from_dict, option
from imcaption.engine.distributed import SINGLE, World
from imcaption.engine.loop import TaskKind, resolve_device
from imcaption.images import as_batch
from imcaption.models.caption_decoders import DECODERS

# The one sequence loss of both tasks (models/sequence_loss.py) stays importable from here, where it was defined.
from imcaption.models.sequence_loss import sequence_loss as sequence_loss
from imcaption.text.word_tokenizer import WordTokenizer, normalize

DEFAULT_SIDE = {"cnn": 128, "mobilenet": 224}  # cnn: an 8 x 8 grid of 16-px cells; mobilenet: 7 x 7
VALIDATION_BATCH = 256


@dataclass(frozen=True)
class CaptionTrainConfig:
    decoder: str = option("sat", "sat: attention + GRU; nic: image once into an LSTM; mrnn: multimodal layer",
                          choices=DECODERS)  # fmt: skip
    # cnn: its cells see only their neighbourhood, so attention has to move onto the object it names.
    # mobilenet: a frozen ImageNet backbone whose features are computed once (the tutorial's recipe); better for
    # real photos, but every cell of its last layer sees the whole image, so its attention does not ground.
    encoder: str = option("cnn", "cnn: a small CNN trained from scratch; mobilenet: frozen ImageNet MobileNetV2",
                          choices=ENCODERS)  # fmt: skip
    image_size: int = option(0, "square input side in pixels; 0: 128 for cnn, 224 for mobilenet")
    top_k: int = option(5000, "vocabulary: the most frequent words of the training captions")
    # 1 keeps every word up to --top-k, as before the option existed.
    min_word_count: int = option(1, "words seen fewer than N times in the training captions become <unk>")
    # Dropped, not cut: a cut caption teaches the model to end a sentence mid-phrase ("a man riding a <end>").
    max_length: int = option(24, "longest caption in tokens, <start> and <end> included: longer training captions "
                                 "are dropped, and no caption is decoded longer")  # fmt: skip
    # Off by default: on the scenes set it spread attention off the objects (BENCHMARKS.md).
    attention_penalty: float = option(0.0, "sat: weight of the doubly stochastic attention regularization")
    limit_captions: int = option(0, "train on the first N captions only (the tutorial uses 30000); 0: all")
    image_dir: str = option("", "the images' folder where it is not found beside the caption file", on_resume=True)
    loop: LoopConfig = field(
        # fp32: bf16 (the captcha default where the CPU has it) is not measured for captioning yet.
        default_factory=lambda: LoopConfig(
            epochs=3, batch_size=64, lr=2e-3, warmup_steps=200, grad_clip=5.0, precision="fp32"
        )
    )

    def __post_init__(self) -> None:
        if self.encoder in DEFAULT_SIDE:  # an unknown encoder is refused by name where the model is built
            check_image_size(self.encoder, self.side)

    @property
    def side(self) -> int:
        return self.image_size or DEFAULT_SIDE[self.encoder]

    def spec(self) -> CaptionModelSpec:
        return CaptionModelSpec(self.decoder, self.encoder, self.side, self.max_length)

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> CaptionTrainConfig:
        return config_from_dict(cls, state)


def check_image_size(encoder: str, side: int) -> None:
    """Refuse, before anything is built, a side the encoder cannot work with."""
    if encoder == "cnn" and (side < 16 or side % 16):
        raise ValueError(f"--image-size for the cnn encoder must be a multiple of 16 (at least 16), got {side}")
    if encoder == "mobilenet" and side < 32:
        raise ValueError(f"--image-size for the mobilenet encoder must be at least 32, got {side}")


def held_out_split(data_dir: Path, split: str | None = None) -> tuple[str, Path]:
    """The captions file of a COCO captions folder's split to score a trained captioner on: `split` if given; by
    default `test` (never used for any choice) where the folder has one, else `val`. Every other layout:
    `open_caption_data(path).held_out(split)`."""

    def path(name: str) -> Path:
        return data_dir / "annotations" / f"captions_{name}.json"

    name = split or ("test" if path("test").is_file() else "val")
    if not path(name).is_file():
        raise FileNotFoundError(f"{data_dir}: no annotations/captions_{name}.json for the {name} split")
    return name, path(name)


def within_length(images: list[CaptionedImage], max_length: int) -> tuple[list[CaptionedImage], int]:
    """The images with only their captions of at most `max_length` tokens (<start> and <end> included), and how
    many captions were dropped; images left without a caption drop out. Dropped rather than cut, so that every
    training target is a whole sentence: a cut one would teach the model to end captions mid-phrase."""
    kept, dropped = [], 0
    for image in images:
        short = tuple(caption for caption in image.captions if len(normalize(caption)) + 2 <= max_length)
        dropped += len(image.captions) - len(short)
        if short:
            kept.append(CaptionedImage(image.image_id, image.path, short))
    if not images:
        raise ValueError("the training split has no captions")
    if not kept:
        shortest = min(len(normalize(caption)) + 2 for image in images for caption in image.captions)
        raise ValueError(f"--max-length {max_length} drops every training caption: the shortest has {shortest} "
                         "tokens with <start> and <end>")  # fmt: skip
    return kept, dropped


def model_inputs(source: np.ndarray, rows: np.ndarray, encoder: str) -> torch.Tensor:
    """Rows of decoded images (cnn) or of cached backbone features (mobilenet) as a model batch."""
    if encoder == "mobilenet":
        return torch.from_numpy(np.asarray(source[rows], dtype=np.float32))
    return as_batch(np.ascontiguousarray(source[rows]))


class CaptionTask:
    """The captioning side of the training loop (imcaption.engine.loop.Task)."""

    kind = TaskKind(CaptionTrainConfig, CAPTIONER_FORMAT, selection_metric="bleu4")

    def __init__(
        self, data_dir: str | Path, config: CaptionTrainConfig, saved: dict | None = None, progress: bool = True
    ) -> None:
        """`saved`: the checkpoint a run resumes from; its vocabulary is reused."""
        self.device = resolve_device(config.loop.device)
        self.config, self.spec, self.progress = config, config.spec(), progress
        self.batch_size = config.loop.batch_size
        self.data = open_caption_data(data_dir, config.image_dir or None)
        train_images = self.data.read("train", config.limit_captions)
        self.train_images, self.dropped_captions = within_length(train_images, config.max_length)
        self.val_images = self.data.read("val")  # scored against all its references, however long
        # A resumed run reuses its saved vocabulary: refitting could renumber the words under trained weights.
        captions = (c for image in self.train_images for c in image.captions)
        self.tokenizer = (
            WordTokenizer.from_dict(saved["tokenizer"])
            if saved
            else WordTokenizer.fit(captions, config.top_k, config.min_word_count)
        )
        self.train_inputs = self._inputs(self.train_images)
        self.val_inputs = self._inputs(self.val_images)
        self.pairs = [(row, caption) for row, image in enumerate(self.train_images) for caption in image.captions]
        torch.manual_seed(config.loop.seed)
        self.model = build_caption_model(self.spec, self.tokenizer.vocab_size).to(self.device)
        self.steps_per_epoch = max(1, len(self.pairs) // self.batch_size)

    def _inputs(self, images: list[CaptionedImage]) -> np.ndarray:
        if self.spec.encoder == "mobilenet":
            cache = self.data.root / ".imcaption_cache"
            return backbone_features(images, cache, self.spec.image_size, progress=self.progress)
        return load_images(images, self.spec.image_size, self.progress)

    def batch(self, step: int, rows: slice = slice(None)) -> tuple[torch.Tensor, torch.Tensor]:
        ids = epoch_batch(step, self.steps_per_epoch, self.batch_size, len(self.pairs), self.config.loop.seed)
        chosen = [self.pairs[i] for i in ids[rows]]
        images = np.array([image for image, _ in chosen])
        tokens = self.tokenizer.batch([caption for _, caption in chosen], self.spec.max_length)
        return model_inputs(self.train_inputs, images, self.spec.encoder).to(self.device), tokens.to(self.device)

    def loss(self, batch: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        inputs, tokens = batch
        logits, attention = self.model(inputs, tokens)
        return sequence_loss(logits, tokens[:, 1:], attention=attention, penalty=self.config.attention_penalty), {}

    def caption_rows(self, rows: np.ndarray, beam: int = 1) -> list[str]:
        inputs = model_inputs(self.val_inputs, rows, self.spec.encoder).to(self.device)
        ids, _ = search_captions(self.model, inputs, self.spec.max_length, beam)
        return [self.tokenizer.decode(row) for row in ids]

    def validate(self, limit: int | None = None, world: World = SINGLE) -> dict[str, float]:
        rows = np.arange(len(self.val_images))[:limit]
        hypotheses = gather_sharded(rows, VALIDATION_BATCH, self.caption_rows, world)
        refs = {i: list(image.captions) for i, image in enumerate(self.val_images[: len(rows)])}
        return caption_scores(refs, dict(enumerate(hypotheses)), meteor=False)

    def description(self) -> dict[str, Any]:
        return {"model_config": asdict(self.spec), "tokenizer": self.tokenizer.to_dict(), "config": asdict(self.config)}

    def rng_state(self) -> dict[str, torch.Tensor]:
        return {}  # dropout draws from torch's global generator, which the loop saves

    def set_rng_state(self, state: dict[str, torch.Tensor]) -> None:
        return None
