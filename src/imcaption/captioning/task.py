"""Captioning as a training task: COCO-format captions and images (or cached backbone features) in, BLEU-4 out."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from imcaption.captioning.coco import CaptionedImage, read_coco_captions
from imcaption.captioning.features import backbone_features, load_images
from imcaption.captioning.metrics import caption_scores
from imcaption.engine.config import LoopConfig, config_from_dict, option
from imcaption.engine.distributed import SINGLE, World
from imcaption.engine.loop import TaskKind, resolve_device
from imcaption.engine.search import SearchTokens, search
from imcaption.images import as_batch
from imcaption.models.caption_decoders import DECODERS, CaptionerConfig, CaptionModel
from imcaption.models.encoder import ConvEncoder, EncoderConfig
from imcaption.models.mobilenet_v2 import feature_grid_side
from imcaption.text.word_tokenizer import END, PAD, START, WordTokenizer

CAPTIONER_FORMAT = "imcaption-captioner"
CAPTION_TOKENS = SearchTokens(START, END, PAD)
ENCODERS = ("cnn", "mobilenet")
DEFAULT_SIDE = {"cnn": 128, "mobilenet": 224}  # cnn: an 8 x 8 grid of 16-px cells; mobilenet: 7 x 7
VALIDATION_BATCH = 256


@dataclass(frozen=True)
class CaptionModelSpec:
    """What building and feeding a captioner needs besides its tokenizer (saved in every checkpoint)."""

    decoder: str = "sat"
    encoder: str = "cnn"
    image_size: int = 128
    max_length: int = 24


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
    max_length: int = option(24, "longest caption in tokens")
    # Off by default: on the scenes set it spread attention off the objects (BENCHMARKS.md).
    attention_penalty: float = option(0.0, "sat: weight of the doubly stochastic attention regularization")
    limit_captions: int = option(0, "train on the first N captions only (the tutorial uses 30000); 0: all")
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


def caption_grid(encoder: str, side: int) -> tuple[int, int]:
    """Rows and columns of the feature grid a square input of `side` pixels gives."""
    if encoder == "mobilenet":
        return feature_grid_side(side), feature_grid_side(side)
    return EncoderConfig(side, side, column_stride=16).grid


def coco_split_files(data_dir: Path) -> tuple[Path, Path]:
    """The training split and the split that picks the best checkpoint."""
    train, val = data_dir / "annotations" / "captions_train.json", data_dir / "annotations" / "captions_val.json"
    if not train.is_file() or not val.is_file():
        raise FileNotFoundError(f"{data_dir}: expected annotations/captions_train.json and captions_val.json")
    return train, val


def held_out_split(data_dir: Path, split: str | None = None) -> tuple[str, Path]:
    """The split to score a trained captioner on: `split` if given; by default `test` (never used for any
    choice) where the folder has one, else `val`."""

    def path(name: str) -> Path:
        return data_dir / "annotations" / f"captions_{name}.json"

    name = split or ("test" if path("test").is_file() else "val")
    if not path(name).is_file():
        raise FileNotFoundError(f"{data_dir}: no annotations/captions_{name}.json for the {name} split")
    return name, path(name)


def build_caption_model(spec: CaptionModelSpec, vocab_size: int) -> CaptionModel:
    if spec.encoder == "mobilenet":
        cells = feature_grid_side(spec.image_size) ** 2
        return CaptionModel(CaptionerConfig(spec.decoder, 1280, vocab_size, grid_cells=cells))
    if spec.encoder != "cnn":
        raise ValueError(f"unknown encoder {spec.encoder!r}; choose one of {', '.join(ENCODERS)}")
    encoder = ConvEncoder(EncoderConfig(spec.image_size, spec.image_size, column_stride=16))
    return CaptionModel(CaptionerConfig(spec.decoder, encoder.channels, vocab_size), encoder)


def sequence_loss(
    logits: torch.Tensor, targets: torch.Tensor, attention: torch.Tensor | None, penalty: float
) -> torch.Tensor:
    """Masked cross-entropy; for attention models plus lambda * sum_i (1 - sum_t alpha_ti)^2, which pushes
    every image region to get attention at some step (the paper's doubly stochastic regularization)."""
    loss = F.cross_entropy(logits.transpose(1, 2), targets, ignore_index=PAD)
    if attention is not None and penalty:
        real = (targets != PAD).unsqueeze(-1).float()
        coverage = (attention * real).sum(dim=1)
        loss = loss + penalty * ((1 - coverage) ** 2).sum(dim=1).mean() / attention.shape[-1]
    return loss


def model_inputs(source: np.ndarray, rows: np.ndarray, encoder: str) -> torch.Tensor:
    """Rows of decoded images (cnn) or of cached backbone features (mobilenet) as a model batch."""
    if encoder == "mobilenet":
        return torch.from_numpy(np.asarray(source[rows], dtype=np.float32))
    return as_batch(np.ascontiguousarray(source[rows]))


def search_captions(
    model: CaptionModel, inputs: torch.Tensor, max_length: int, beam: int = 1
) -> tuple[list[list[int]], torch.Tensor | None]:
    """Token ids per image and, for sat under greedy search, the attention (B, T, N) of each step."""
    state = model.decoder.start(model.features(inputs))
    searched = search(model.decoder, state, inputs.shape[0], CAPTION_TOKENS, max_length, beam)
    return searched.ids, searched.attention


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
        self.data_dir = Path(data_dir)
        train_file, val_file = coco_split_files(self.data_dir)
        self.train_images = read_coco_captions(train_file, self.data_dir / "images", config.limit_captions)
        self.val_images = read_coco_captions(val_file, self.data_dir / "images")
        # A resumed run reuses its saved vocabulary: refitting could renumber the words under trained weights.
        captions = (c for image in self.train_images for c in image.captions)
        self.tokenizer = (
            WordTokenizer.from_dict(saved["tokenizer"]) if saved else WordTokenizer.fit(captions, config.top_k)
        )
        self.train_inputs = self._inputs(self.train_images)
        self.val_inputs = self._inputs(self.val_images)
        self.pairs = [(row, caption) for row, image in enumerate(self.train_images) for caption in image.captions]
        torch.manual_seed(config.loop.seed)
        self.model = build_caption_model(self.spec, self.tokenizer.vocab_size).to(self.device)
        self.steps_per_epoch = max(1, len(self.pairs) // self.batch_size)

    def _inputs(self, images: list[CaptionedImage]) -> np.ndarray:
        if self.spec.encoder == "mobilenet":
            cache = self.data_dir / ".imcaption_cache"
            return backbone_features(images, cache, self.spec.image_size, progress=self.progress)
        return load_images(images, self.spec.image_size, self.progress)

    def batch(self, step: int, rows: slice = slice(None)) -> tuple[torch.Tensor, torch.Tensor]:
        epoch, offset = divmod(step, self.steps_per_epoch)
        order = np.random.default_rng([self.config.loop.seed, epoch]).permutation(len(self.pairs))
        chosen = [self.pairs[i] for i in order[offset * self.batch_size : (offset + 1) * self.batch_size][rows]]
        images = np.array([image for image, _ in chosen])
        tokens = self.tokenizer.batch([caption for _, caption in chosen], self.spec.max_length)
        return model_inputs(self.train_inputs, images, self.spec.encoder).to(self.device), tokens.to(self.device)

    def loss(self, batch: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        inputs, tokens = batch
        logits, attention = self.model(inputs, tokens)
        return sequence_loss(logits, tokens[:, 1:], attention, self.config.attention_penalty), {}

    def caption_rows(self, rows: np.ndarray, beam: int = 1) -> list[str]:
        inputs = model_inputs(self.val_inputs, rows, self.spec.encoder).to(self.device)
        ids, _ = search_captions(self.model, inputs, self.spec.max_length, beam)
        return [self.tokenizer.decode(row) for row in ids]

    def validate(self, limit: int | None = None, world: World = SINGLE) -> dict[str, float]:
        rows = np.arange(len(self.val_images))[:limit]
        mine = rows[world.shard(len(rows))]
        hypotheses = []
        for start in range(0, len(mine), VALIDATION_BATCH):
            hypotheses += self.caption_rows(mine[start : start + VALIDATION_BATCH])
        hypotheses = world.gather(hypotheses)
        refs = {i: list(image.captions) for i, image in enumerate(self.val_images[: len(rows)])}
        return caption_scores(refs, dict(enumerate(hypotheses)), meteor=False)

    def description(self) -> dict[str, Any]:
        return {"model_config": asdict(self.spec), "tokenizer": self.tokenizer.to_dict(), "config": asdict(self.config)}

    def rng_state(self) -> dict[str, torch.Tensor]:
        return {}  # dropout draws from torch's global generator, which the loop saves

    def set_rng_state(self, state: dict[str, torch.Tensor]) -> None:
        return None
