"""Captcha recognition as a training task: cached images and character targets in, exact match out."""

from __future__ import annotations

import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from imcaption.captcha.augment import augment_batch, augment_config
from imcaption.captcha.dataset import CaptchaDataset, open_dataset
from imcaption.captcha.image_cache import ensure_cache
from imcaption.captcha.layouts import suggested_input_size
from imcaption.captcha.metrics import character_error_rate, exact_match
from imcaption.captcha.reading_types import RECOGNIZER_FORMAT
from imcaption.captcha.train_config import CaptchaTrainConfig
from imcaption.engine.batches import epoch_batch, gather_sharded
from imcaption.engine.devices import resolve_device
from imcaption.engine.distributed import SINGLE, World
from imcaption.engine.task import TaskKind
from imcaption.images import ImageSize, as_batch
from imcaption.models import EncoderConfig, RecognizerConfig, build_recognizer
from imcaption.text.char_tokenizer import CharTokenizer

# Validation batches: on a CPU small enough for the decoder's per-step tensors to stay in the core's cache (see
# READ_BATCH in reading_types.py for what batches of 500 cost), large on a GPU.
VALIDATION_BATCH = {"cpu": 64, "cuda": 500}
VALIDATION_SAMPLE_SEED = 0


def training_input_size(config: CaptchaTrainConfig, dataset: CaptchaDataset) -> ImageSize:
    """The model input a run of `config` on `dataset` uses: --height/--width where given; else the model's own for
    words_captcha, and one fitted to the images' size and aspect ratio for a dataset of the user's own."""
    if dataset.is_words_layout:
        return config.input_size
    train = dataset.split("train").indices
    return config.input_size_for(suggested_input_size([dataset.image_path(i) for i in train]))


def _tokenizer(dataset: CaptchaDataset, train_words: list[str], saved: dict | None) -> CharTokenizer:
    """The saved run's tokenizer; a-z and 5 letters for words_captcha; else the training labels' characters and
    longest length."""
    if saved is not None:
        return CharTokenizer.from_dict(saved["tokenizer"])
    if dataset.is_words_layout:
        return CharTokenizer()
    return CharTokenizer.fit(train_words)


def report_unreadable(dataset: CaptchaDataset, tokenizer: CharTokenizer) -> None:
    """Say which validation and test labels the model cannot produce (a character the training labels never use,
    or more characters than the longest): they stay in the splits and count as misread."""
    for name in ("val", "test"):
        ids = [i for i in dataset.split(name).indices if i in dataset.labels]
        bad = [dataset.labels[i] for i in ids if not tokenizer.can_write(dataset.labels[i])]
        if bad:
            unseen = sorted({c for word in bad for c in word if c not in tokenizer.charset})
            print(f"note: {len(bad):,} {name} labels cannot be read by a model trained on these training labels "
                  f"(characters never trained: {''.join(unseen) or 'none'}; longest trained: {tokenizer.max_length});"
                  f" e.g. {bad[0]!r}. They count as misread.", file=sys.stderr)  # fmt: skip


def encoder_channels(text: str) -> tuple[int, int, int, int]:
    """ "16,32,64,128" -> (16, 32, 64, 128); anything else is a clear error."""
    try:
        channels = tuple(int(part) for part in text.split(","))
    except ValueError:
        channels = ()
    if len(channels) != 4 or min(channels) < 1:
        raise ValueError(f"--channels takes four positive whole numbers such as 16,32,64,128; got {text!r}")
    return channels  # type: ignore[return-value]


def validation_sample(count: int, limit: int | None) -> np.ndarray:
    """Sorted rows of a seeded random sample of `limit` of `count` validation images (all of them without one)."""
    if not limit or limit >= count:
        return np.arange(count)
    return np.sort(np.random.default_rng(VALIDATION_SAMPLE_SEED).choice(count, limit, replace=False))


class CaptchaTask:
    """The captcha side of the training loop (imcaption.engine.task.Task)."""

    kind = TaskKind(CaptchaTrainConfig, RECOGNIZER_FORMAT, selection_metric="val_exact_match")

    def __init__(
        self, data_dir: str | Path, config: CaptchaTrainConfig, saved: dict | None = None, progress: bool = True
    ) -> None:
        """`saved`: the checkpoint a run resumes from (its tokenizer is reused, not refit)."""
        # Resolved first, so an unknown mode or device fails before any data is opened.
        self.augmentation = None if config.augment == "none" else augment_config(config.augment)
        channels = encoder_channels(config.channels)
        self.device = resolve_device(config.loop.device)
        self.batch_size = config.loop.batch_size
        dataset = open_dataset(data_dir, config.data)
        self.dataset_text = dataset.describe()
        self.config = config = config.resolved(training_input_size(config, dataset))
        self.size = config.input_size
        self.cache = ensure_cache(dataset, self.size, progress=progress)
        self.train_ids = np.asarray(dataset.split("train").indices)
        if config.train_limit:
            self.train_ids = self.train_ids[: config.train_limit]
        self.val_ids = np.asarray(dataset.split("val").indices)
        if config.val_limit:
            self.val_ids = self.val_ids[: config.val_limit]
        train_words = [dataset.labels[i] for i in self.train_ids]
        self.tokenizer = _tokenizer(dataset, train_words, saved)
        self.train_targets = self.tokenizer.batch_targets(train_words)
        self.val_words = [dataset.labels[i] for i in self.val_ids]
        report_unreadable(dataset, self.tokenizer)
        self.model_config = RecognizerConfig(
            kind=config.model,
            encoder=EncoderConfig(config.height, config.width, channels),
            hidden=config.hidden,
            vocab_size=self.tokenizer.vocab_size,
            max_length=self.tokenizer.max_length,
        )
        torch.manual_seed(config.loop.seed)
        self.model = build_recognizer(self.model_config).to(self.device, memory_format=torch.channels_last)
        self.steps_per_epoch = max(1, len(self.train_ids) // self.batch_size)
        self.augment_rng = torch.Generator().manual_seed(config.loop.seed + 1)

    def batch_ids(self, step: int) -> np.ndarray:
        """Positions in the training set of a step's images: a permutation per epoch, seeded by (seed, epoch)."""
        return epoch_batch(step, self.steps_per_epoch, self.batch_size, len(self.train_ids), self.config.loop.seed)

    def batch(self, step: int, rows: slice = slice(None)) -> tuple[torch.Tensor, torch.Tensor]:
        ids = self.batch_ids(step)
        mine = ids[rows]
        pixels = torch.from_numpy(self.cache.read(self.train_ids[mine])).permute(0, 3, 1, 2)  # uint8 (B, 3, H, W)
        if self.augmentation is None:
            images = pixels.float()
        else:
            images = augment_batch(pixels, self.augment_rng, self.augmentation, rows, len(ids))
        return images.to(self.device), self.train_targets[mine].to(self.device)

    def loss(self, batch: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        images, targets = batch
        loss, exact = self.model.loss(images, targets, self.config.label_smoothing)
        return loss, {"exact_match": exact.float().mean().item()}

    def validate(self, limit: int | None = None, world: World = SINGLE) -> dict[str, float]:
        """Exact match and CER on the validation split, or with `limit` on a fixed random sample of it (the same
        images at every validation of every run): the first N would be the first N ids, not a sample."""
        rows = validation_sample(len(self.val_ids), limit)
        val_words = [self.val_words[row] for row in rows]
        batch = VALIDATION_BATCH.get(self.device.type, VALIDATION_BATCH["cuda"])
        words = gather_sharded(self.val_ids[rows], batch, self._read_words, world)
        return {
            "val_exact_match": exact_match(words, val_words),
            "val_cer": character_error_rate(words, val_words),
            "val_images": len(val_words),
        }

    def _read_words(self, ids: np.ndarray) -> list[str]:
        images = as_batch(self.cache.read(ids)).to(self.device)
        return [self.tokenizer.decode(tokens) for tokens in self.model.decode(images).ids]

    def description(self) -> dict[str, Any]:
        return {
            "model_config": self.model_config.to_dict(),
            "tokenizer": self.tokenizer.to_dict(),
            "image_size": asdict(self.size),
            "config": asdict(self.config),
        }

    def rng_state(self) -> dict[str, torch.Tensor]:
        return {"augment": self.augment_rng.get_state()}

    def set_rng_state(self, state: dict[str, torch.Tensor]) -> None:
        self.augment_rng.set_state(state["augment"])
