"""Training and using a captioner: COCO-format data in, checkpoints and captions out."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from imcaption.caption_data import backbone_features, load_images
from imcaption.caption_metrics import caption_scores
from imcaption.checkpoint import load_checkpoint, save_checkpoint
from imcaption.data.coco import CaptionedImage, read_coco_captions
from imcaption.decode import SearchTokens, beam_search, greedy_search
from imcaption.inference import as_batch
from imcaption.models.captioner import Captioner, CaptionerConfig
from imcaption.models.encoder import ConvEncoder, EncoderConfig
from imcaption.text.word_tokenizer import END, PAD, START, WordTokenizer
from imcaption.train import warmup_cosine

FORMAT = "imcaption-captioner"
CAPTION_TOKENS = SearchTokens(START, END, PAD)


@dataclass(frozen=True)
class CaptionTrainConfig:
    decoder: str = "sat"
    # "cnn": a small CNN trained from scratch, end to end. Its cells see only their neighbourhood, so attention
    # has to move onto the object it names (grounding, BENCHMARKS.md). "mobilenet": a frozen ImageNet backbone
    # whose features are computed once, as the tutorial does with InceptionV3; better for real photos, but
    # every cell of its last layer sees the whole image, so its attention does not ground.
    encoder: str = "cnn"
    image_size: int = 128  # cnn: an 8 x 8 grid of 16-pixel cells; mobilenet: use 224 (7 x 7)
    epochs: int = 3
    batch_size: int = 64
    lr: float = 2e-3
    warmup_steps: int = 200
    top_k: int = 5000
    max_length: int = 24
    # Weight of the doubly stochastic regularization of Show, Attend and Tell (every cell attended about once
    # over the caption). Off by default: on the scenes set it spread attention off the objects (BENCHMARKS.md).
    attention_penalty: float = 0.0
    limit_captions: int = 0
    seed: int = 0


def coco_split_files(data_dir: Path) -> tuple[Path, Path]:
    train, val = data_dir / "annotations" / "captions_train.json", data_dir / "annotations" / "captions_val.json"
    if not train.is_file() or not val.is_file():
        raise FileNotFoundError(f"{data_dir}: expected annotations/captions_train.json and captions_val.json")
    return train, val


def build_captioner(config: CaptionTrainConfig, vocab_size: int) -> Captioner:
    if config.encoder == "mobilenet":
        cells = (config.image_size // 32) ** 2
        return Captioner(CaptionerConfig(config.decoder, 1280, vocab_size, grid_cells=cells))
    if config.encoder != "cnn":
        raise ValueError(f"unknown encoder {config.encoder!r}; choose cnn or mobilenet")
    encoder = ConvEncoder(EncoderConfig(config.image_size, config.image_size, column_stride=16))
    return Captioner(CaptionerConfig(config.decoder, encoder.channels, vocab_size), encoder)


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


class CaptionTrainer:
    def __init__(self, data_dir: str | Path, run_dir: str | Path, config: CaptionTrainConfig, progress: bool = True):
        self.config, self.run_dir, self.progress = config, Path(run_dir), progress
        self.data_dir = Path(data_dir)
        train_file, val_file = coco_split_files(self.data_dir)
        self.train_images = read_coco_captions(train_file, self.data_dir / "images", config.limit_captions)
        self.val_images = read_coco_captions(val_file, self.data_dir / "images")
        self.tokenizer = WordTokenizer.fit((c for i in self.train_images for c in i.captions), config.top_k)
        self.train_inputs = self._inputs(self.train_images)
        self.val_inputs = self._inputs(self.val_images)
        self.pairs = [(row, caption) for row, image in enumerate(self.train_images) for caption in image.captions]
        torch.manual_seed(config.seed)
        self.model = build_captioner(config, self.tokenizer.vocab_size)
        self.optimizer = torch.optim.AdamW([p for p in self.model.parameters() if p.requires_grad], lr=config.lr)
        self.steps_per_epoch = max(1, len(self.pairs) // config.batch_size)
        self.total_steps = self.steps_per_epoch * config.epochs
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, self._lr_factor)
        self.step = 0
        self.best_bleu4 = -1.0
        self.wall_seconds = 0.0

    def _inputs(self, images: list[CaptionedImage]) -> np.ndarray:
        if self.config.encoder == "mobilenet":
            cache = self.data_dir / ".imcaption_cache"
            return backbone_features(images, cache, self.config.image_size, progress=self.progress)
        return load_images(images, self.config.image_size, self.progress)

    def batch_inputs(self, source: np.ndarray, rows: np.ndarray) -> torch.Tensor:
        if self.config.encoder == "mobilenet":
            return torch.from_numpy(np.asarray(source[rows], dtype=np.float32))
        return as_batch(np.ascontiguousarray(source[rows]))

    def _lr_factor(self, step: int) -> float:
        return warmup_cosine(step, self.config.warmup_steps, self.total_steps)

    def train_step(self, step: int) -> float:
        epoch, offset = divmod(step, self.steps_per_epoch)
        order = np.random.default_rng([self.config.seed, epoch]).permutation(len(self.pairs))
        chosen = [self.pairs[i] for i in order[offset * self.config.batch_size : (offset + 1) * self.config.batch_size]]
        rows = np.array([row for row, _ in chosen])
        tokens = self.tokenizer.batch([caption for _, caption in chosen], self.config.max_length)
        self.model.train()
        logits, attention = self.model(self.batch_inputs(self.train_inputs, rows), tokens)
        loss = sequence_loss(logits, tokens[:, 1:], attention, self.config.attention_penalty)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(self.model.parameters(), 5.0)
        self.optimizer.step()
        self.scheduler.step()
        return loss.item()

    def caption_rows(self, source: np.ndarray, rows: np.ndarray, beam: int = 1) -> list[str]:
        return caption_inputs(
            self.model, self.tokenizer, self.batch_inputs(source, rows), beam, self.config.max_length
        )[0]

    def validate(self, meteor: bool = False) -> dict[str, float]:
        rows = np.arange(len(self.val_images))
        hypotheses = []
        for start in range(0, len(rows), 256):
            hypotheses += self.caption_rows(self.val_inputs, rows[start : start + 256])
        refs = {i: list(image.captions) for i, image in enumerate(self.val_images)}
        return caption_scores(refs, dict(enumerate(hypotheses)), meteor=meteor)

    def state(self) -> dict[str, Any]:
        return {
            "model": self.model.state_dict(), "train_config": asdict(self.config),
            "tokenizer": self.tokenizer.to_dict(), "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(), "step": self.step, "best_bleu4": self.best_bleu4,
            "wall_seconds": self.wall_seconds,
        }  # fmt: skip

    def save(self, name: str) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        save_checkpoint(self.run_dir / name, self.state(), FORMAT)

    def resume(self, path: Path) -> None:
        state = load_captioner_state(path)
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.step, self.best_bleu4, self.wall_seconds = state["step"], state["best_bleu4"], state["wall_seconds"]

    def run(self) -> float:
        """Train to the end; validate (BLEU-4, greedy) each epoch; keep last.pt and best.pt. -> best BLEU-4."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        bar = tqdm(
            total=self.total_steps,
            initial=self.step,
            desc=f"train {self.config.decoder}",
            unit="step",
            disable=not self.progress,
        )
        start, losses = time.perf_counter(), []
        try:
            while self.step < self.total_steps:
                losses.append(self.train_step(self.step))
                self.step += 1
                bar.set_postfix(loss=f"{np.mean(losses[-50:]):.3f}", refresh=False)
                bar.update(1)
                if self.step % self.steps_per_epoch == 0 or self.step == self.total_steps:
                    scores = self.validate()
                    now = time.perf_counter()
                    self.wall_seconds, start = self.wall_seconds + now - start, now
                    record = {
                        "step": self.step,
                        "wall_minutes": self.wall_seconds / 60,
                        "train_loss": float(np.mean(losses)),
                        **scores,
                    }
                    losses = []
                    with (self.run_dir / "metrics.jsonl").open("a") as handle:
                        handle.write(json.dumps(record) + "\n")
                    if scores["bleu4"] > self.best_bleu4:
                        self.best_bleu4 = scores["bleu4"]
                        self.save("best.pt")
                    self.save("last.pt")
                    bar.write(f"step {self.step}: BLEU-4 {scores['bleu4']:.3f}, CIDEr {scores['cider']:.3f}")
        except KeyboardInterrupt:
            self.wall_seconds += time.perf_counter() - start
            self.save("last.pt")
            raise
        finally:
            bar.close()
        return self.best_bleu4


def load_captioner_state(path: str | Path) -> dict[str, Any]:
    return load_checkpoint(path, FORMAT)


@dataclass
class LoadedCaptioner:
    model: Captioner
    tokenizer: WordTokenizer
    config: CaptionTrainConfig


def load_captioner(path: str | Path) -> LoadedCaptioner:
    state = load_captioner_state(path)
    config = CaptionTrainConfig(**state["train_config"])
    tokenizer = WordTokenizer.from_dict(state["tokenizer"])
    model = build_captioner(config, tokenizer.vocab_size)
    model.load_state_dict(state["model"])
    return LoadedCaptioner(model.eval(), tokenizer, config)


@torch.no_grad()
def greedy_tokens(
    model: Captioner, inputs: torch.Tensor, max_length: int = 24
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Greedy token ids (B, T) and, for sat, the attention (B, T, N) that produced each token."""
    model.eval()
    state = model.decoder.start(model.features(inputs))
    ids, _, attention = greedy_search(model.decoder, state, inputs.shape[0], CAPTION_TOKENS, max_length)
    return ids, attention


@torch.no_grad()
def caption_inputs(
    model: Captioner, tokenizer: WordTokenizer, inputs: torch.Tensor, beam: int = 1, max_length: int = 24
) -> tuple[list[str], torch.Tensor | None]:
    """Captions for a batch of images (or cached features); with beam 1 also the attention (B, T, N) of sat."""
    if beam == 1:
        ids, attention = greedy_tokens(model, inputs, max_length)
    else:
        model.eval()
        state = model.decoder.start(model.features(inputs))
        ids, _ = beam_search(model.decoder, state, inputs.shape[0], CAPTION_TOKENS, max_length, beam)
        attention = None
    return [tokenizer.decode(row) for row in ids.tolist()], attention


def attention_grid(loaded: LoadedCaptioner) -> tuple[int, int]:
    """Rows and columns of the feature grid that attention weights are spread over."""
    if loaded.config.encoder == "mobilenet":
        return loaded.config.image_size // 32, loaded.config.image_size // 32
    return loaded.model.encoder.config.grid


def captioner_inputs(loaded: LoadedCaptioner, paths: list[str | Path]) -> tuple[torch.Tensor, np.ndarray]:
    """Model inputs for image files of any size and mode (pixels, or backbone features), and the resized images."""
    images = [CaptionedImage(n, Path(p), ()) for n, p in enumerate(paths)]
    pixels = load_images(images, loaded.config.image_size, progress=False)
    if loaded.config.encoder != "mobilenet":
        return as_batch(pixels), pixels
    from imcaption.models.mobilenet_v2 import imagenet_normalize, load_mobilenet_v2

    with torch.no_grad():
        grid = load_mobilenet_v2().features(imagenet_normalize(as_batch(pixels)))
    return grid.flatten(2).transpose(1, 2), pixels


def caption_files(
    loaded: LoadedCaptioner, paths: list[str | Path], beam: int = 1
) -> tuple[list[str], torch.Tensor | None, np.ndarray]:
    """Captions for image files of any size and mode, the attention maps, and the resized images."""
    inputs, pixels = captioner_inputs(loaded, paths)
    captions, attention = caption_inputs(loaded.model, loaded.tokenizer, inputs, beam, loaded.config.max_length)
    return captions, attention, pixels
