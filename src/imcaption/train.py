"""The training loop: AdamW with warmup and cosine decay, validation, checkpoints, exact resume."""

from __future__ import annotations

import json
import math
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from imcaption.augment import augment_batch, augment_config
from imcaption.checkpoint import load_checkpoint, save_checkpoint
from imcaption.data.captcha_dataset import CaptchaDataset
from imcaption.data.image_cache import ImageCache, ensure_cache
from imcaption.data.preprocess import ImageSize
from imcaption.decode import ctc_greedy, decode_batch
from imcaption.evaluate import character_error_rate, exact_match
from imcaption.inference import as_batch
from imcaption.models import EncoderConfig, RecognizerConfig, build_recognizer
from imcaption.text.char_tokenizer import PAD, CharTokenizer
from imcaption.visualize import plot_training_curves


@dataclass(frozen=True)
class TrainConfig:
    model: str = "sat"
    epochs: int = 10
    batch_size: int = 128
    lr: float = 3e-3
    weight_decay: float = 0.01
    warmup_steps: int = 300
    grad_clip: float = 2.0
    height: int = 64
    width: int = 128
    augment: str = "shift"  # one of augment.AUGMENT_MODES
    label_smoothing: float = 0.1
    seed: int = 0
    eval_every: int = 0  # steps between validations; 0 = once per epoch
    val_limit: int = 0  # validate on the first N validation images; 0 = all
    train_limit: int = 0  # train on the first N training images; 0 = all
    max_steps: int = 0  # stop early after this many steps (tests); 0 = run the schedule out
    keep: int = 3
    threads: int = 0  # 0 = torch's default (all cores)

    @classmethod
    def from_dict(cls, state: dict) -> TrainConfig:
        """A config saved in a checkpoint. Older runs stored the augmentation as a boolean and trained
        without label smoothing."""
        augment = state.get("augment", cls.augment)
        if isinstance(augment, bool):
            augment = "full" if augment else "none"
        return cls(**{"label_smoothing": 0.0, **state, "augment": augment})


@dataclass
class TrainState:
    step: int = 0
    best_exact_match: float = -1.0
    wall_seconds: float = 0.0


def warmup_cosine(step: int, warmup: int, total: int) -> float:
    """Learning-rate factor: linear warmup, then cosine decay to 2 % of the peak."""
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def masked_cross_entropy(logits: torch.Tensor, targets: torch.Tensor, label_smoothing: float = 0.0) -> torch.Tensor:
    """Mean cross-entropy over real tokens (letters and <end>); <pad> positions count for nothing."""
    return F.cross_entropy(logits.transpose(1, 2), targets, ignore_index=PAD, label_smoothing=label_smoothing)


class Trainer:
    def __init__(self, data_dir: str | Path, run_dir: str | Path, config: TrainConfig, progress: bool = True):
        # Resolved once, and first, so an unknown mode fails before any data is opened.
        self.augmentation = None if config.augment == "none" else augment_config(config.augment)
        self.config = config
        self.run_dir = Path(run_dir)
        self.progress = progress
        if config.threads:
            torch.set_num_threads(config.threads)
        dataset = CaptchaDataset.open(data_dir)
        self.size = ImageSize(config.height, config.width)
        self.cache: ImageCache = ensure_cache(dataset, self.size, progress=progress)
        self.tokenizer = CharTokenizer()
        self.train_ids = np.asarray(dataset.split("train").indices)
        if config.train_limit:
            self.train_ids = self.train_ids[: config.train_limit]
        self.val_ids = np.asarray(dataset.split("val").indices)
        if config.val_limit:
            self.val_ids = self.val_ids[: config.val_limit]
        self.train_targets = self.tokenizer.batch_targets([dataset.labels[i] for i in self.train_ids])
        self.val_words = [dataset.labels[i] for i in self.val_ids]
        self.model_config = RecognizerConfig(
            kind=config.model,
            encoder=EncoderConfig(config.height, config.width),
            vocab_size=self.tokenizer.vocab_size,
            max_length=self.tokenizer.max_length,
        )
        torch.manual_seed(config.seed)
        self.model = build_recognizer(self.model_config).to(memory_format=torch.channels_last)
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        self.steps_per_epoch = max(1, len(self.train_ids) // config.batch_size)
        self.total_steps = self.steps_per_epoch * config.epochs
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, self._lr_factor)
        self.augment_rng = torch.Generator().manual_seed(config.seed + 1)
        self.state = TrainState()

    def _lr_factor(self, step: int) -> float:
        return warmup_cosine(step, self.config.warmup_steps, self.total_steps)

    def batch_ids(self, step: int) -> np.ndarray:
        """The same step always sees the same images, which is what makes resume exact."""
        epoch, offset = divmod(step, self.steps_per_epoch)
        order = np.random.default_rng([self.config.seed, epoch]).permutation(len(self.train_ids))
        return order[offset * self.config.batch_size : (offset + 1) * self.config.batch_size]

    def loss(self, images: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, float]:
        """Masked cross-entropy (sat) or CTC loss; and the batch's exact-match rate."""
        if self.model_config.kind == "sat":
            logits = self.model(images, targets)
            loss = masked_cross_entropy(logits, targets, self.config.label_smoothing)
            correct = ((logits.argmax(-1) == targets) | (targets == PAD)).all(dim=1)
            return loss, correct.float().mean().item()
        log_probs = self.model(images)
        lengths = (targets > 2).sum(dim=1)
        labels = targets[:, : self.tokenizer.max_length]
        steps = torch.full((images.shape[0],), log_probs.shape[1], dtype=torch.long)
        loss = F.ctc_loss(log_probs.transpose(0, 1), labels, steps, lengths, blank=PAD, zero_infinity=True)
        read = ctc_greedy(log_probs.detach(), self.tokenizer).words
        truth = [self.tokenizer.decode(row) for row in targets.tolist()]
        return loss, exact_match(read, truth)

    def train_step(self, step: int) -> tuple[float, float]:
        ids = self.batch_ids(step)
        images = as_batch(self.cache.read(self.train_ids[ids]))
        if self.augmentation is not None:
            images = augment_batch(images, self.augment_rng, self.augmentation)
        targets = self.train_targets[ids]
        self.model.train()
        loss, accuracy = self.loss(images, targets)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
        self.optimizer.step()
        self.scheduler.step()
        return loss.item(), accuracy

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        self.model.eval()
        words: list[str] = []
        for start in range(0, len(self.val_ids), 500):
            images = as_batch(self.cache.read(self.val_ids[start : start + 500]))
            words += decode_batch(self.model, images, self.tokenizer).words
        return {
            "val_exact_match": exact_match(words, self.val_words),
            "val_cer": character_error_rate(words, self.val_words),
        }

    def checkpoint_state(self, metrics: dict | None = None) -> dict:
        return {
            "model": self.model.state_dict(),
            "model_config": self.model_config.to_dict(),
            "tokenizer": self.tokenizer.to_dict(),
            "image_size": asdict(self.size),
            "train_config": asdict(self.config),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "augment_rng": self.augment_rng.get_state(),
            "torch_rng": torch.get_rng_state(),
            "train_state": asdict(self.state),
            "metrics": metrics or {},
        }

    def resume(self, path: str | Path) -> None:
        state = load_checkpoint(path)
        # Compared as configs, not dicts: a run saved before a config field existed has that field's default.
        if RecognizerConfig.from_dict(state["model_config"]) != self.model_config:
            raise ValueError(f"{path} was trained with another model configuration; start a new --out folder")
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.augment_rng.set_state(state["augment_rng"])
        torch.set_rng_state(state["torch_rng"])
        self.state = TrainState(**state["train_state"])

    def save(self, metrics: dict | None = None, is_best: bool = False) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        state = self.checkpoint_state(metrics)
        save_checkpoint(self.run_dir / f"step-{self.state.step:07d}.pt", state)
        save_checkpoint(self.run_dir / "last.pt", state)
        if is_best:
            save_checkpoint(self.run_dir / "best.pt", state)
        for old in sorted(self.run_dir.glob("step-*.pt"))[: -self.config.keep]:
            old.unlink()

    def log(self, record: dict) -> None:
        with (self.run_dir / "metrics.jsonl").open("a") as handle:
            handle.write(json.dumps(record) + "\n")
        plot_training_curves(self.run_dir / "metrics.jsonl", self.run_dir / "curves.png")

    def run(self) -> TrainState:
        """Train to the end of the schedule (or max_steps). Ctrl-C saves last.pt and re-raises."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        eval_every = self.config.eval_every or self.steps_per_epoch
        stop = self.total_steps if not self.config.max_steps else min(self.total_steps, self.config.max_steps)
        # Redrawn every 0.1 s on a terminal; in a log file, a line every 30 s is plenty.
        interval = 0.1 if sys.stderr.isatty() else 30.0
        bar = tqdm(
            total=stop,
            initial=self.state.step,
            desc="train",
            unit="step",
            disable=not self.progress,
            mininterval=interval,
        )
        window_loss, window_acc, window_images, window_start = [], [], 0, time.perf_counter()
        segment_start = time.perf_counter()
        try:
            while self.state.step < stop:
                loss, accuracy = self.train_step(self.state.step)
                self.state.step += 1
                window_loss.append(loss)
                window_acc.append(accuracy)
                window_images += self.config.batch_size
                rate = window_images / (time.perf_counter() - window_start)
                bar.set_postfix(
                    loss=f"{np.mean(window_loss[-50:]):.3f}",
                    acc=f"{np.mean(window_acc[-50:]):.3f}",
                    img_s=f"{rate:.0f}",
                    refresh=False,
                )
                bar.update(1)
                if self.state.step % eval_every == 0 or self.state.step == stop:
                    train_seconds = time.perf_counter() - window_start
                    metrics = self.validate()
                    now = time.perf_counter()
                    self.state.wall_seconds += now - segment_start
                    segment_start = now
                    record = {
                        "step": self.state.step,
                        "epoch": self.state.step / self.steps_per_epoch,
                        "wall_minutes": self.state.wall_seconds / 60,
                        "lr": self.scheduler.get_last_lr()[0],
                        "train_loss": float(np.mean(window_loss)),
                        "train_exact_match": float(np.mean(window_acc)),
                        "train_images_per_s": window_images / train_seconds,
                        **metrics,
                    }
                    is_best = metrics["val_exact_match"] > self.state.best_exact_match
                    if is_best:
                        self.state.best_exact_match = metrics["val_exact_match"]
                    self.save(record, is_best)
                    self.log(record)
                    bar.write(
                        f"step {self.state.step}: val exact match {metrics['val_exact_match']:.4f}, "
                        f"CER {metrics['val_cer']:.4f}, {record['wall_minutes']:.1f} min"
                    )
                    window_loss, window_acc, window_images, window_start = [], [], 0, time.perf_counter()
        except KeyboardInterrupt:
            self.state.wall_seconds += time.perf_counter() - segment_start
            self.save()
            bar.close()
            raise
        bar.close()
        return self.state
