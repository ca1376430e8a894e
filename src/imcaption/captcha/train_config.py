"""The captcha training options (`imcaption captcha train --help` lists them), as plain data.

Apart from the training task (task.py) and free of torch, so that the command line builds its options where the
'train' extra is not installed, and says which extra `captcha train` needs instead of failing to start."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

from imcaption.captcha.layouts import DatasetLayout
from imcaption.engine.config import LoopConfig, config_from_dict, option
from imcaption.images import ImageSize
from imcaption.models import RECOGNIZERS

# shift: whole-pixel translation + channel permutation (the default); full: affine warp + permutation;
# color: permutation only; none. (augment.py, which applies them, imports torch.)
AUGMENT_MODES = ("shift", "full", "color", "none")

# 96x192 sees the thin strokes that pass for l, i and s: level with 80x160 at a 15-minute budget, ahead at 60
# (BENCHMARKS.md, recipe probes and full runs). The crnn peer keeps the 64-pixel height its users train it at.
DEFAULT_INPUT_SIZE = ImageSize(96, 192)
MODEL_INPUT_SIZES = {"crnn": ImageSize(64, 128)}


@dataclass(frozen=True)
class CaptchaTrainConfig:
    model: str = option(
        "sat",
        "sat: attention + GRU (Show, Attend and Tell); par: position queries attending over the grid, all letters"
        " at once; ctc: BiGRU over columns + CTC; crnn: the peer, a standard captcha CRNN (gray CNN5 + BiLSTM + CTC)",
        choices=RECOGNIZERS,
    )
    channels: str = option(
        "16,32,64,128",
        "encoder channels of its four stages, comma-separated; the last two run at 1/4 and 1/8 of the input"
        " width, where width costs least per pixel",
    )
    hidden: int = option(256, "decoder state size: the sat GRU's units, the ctc BiGRU's (both ways); not par, crnn")
    height: int = option(0, "model input height in pixels (divisible by 16); 0: the model's own, 96 (crnn: 64)")
    width: int = option(0, "model input width in pixels (divisible by 8); 0: the model's own, 192 (crnn: 128)")
    augment: str = option(
        "shift",
        "shift: whole-pixel shifts + color-channel permutation; full: affine warp + permutation; "
        "color: permutation only; none",
        choices=AUGMENT_MODES,
    )
    label_smoothing: float = option(0.1, "label smoothing of the sat loss; 0 turns it off")
    train_limit: int = option(0, "train on the first N training images only; 0: all")
    val_limit: int = option(0, "validate on the first N validation images only; 0: all")
    # Only for datasets not in the words_captcha layout: where the labels are and how the split is made.
    data: DatasetLayout = field(default_factory=DatasetLayout)
    # The shared loop's defaults are the captcha recipe (10 epochs, peak 3e-3, 300 warmup, clip 2), with batches of
    # 64: at equal wall time they read more from each image than batches of 128 (BENCHMARKS.md, recipe probes).
    loop: LoopConfig = field(default_factory=lambda: LoopConfig(batch_size=64))

    @property
    def input_size(self) -> ImageSize:
        """--height and --width, each 0 taking the model's own input size (for words_captcha images)."""
        return self.input_size_for(MODEL_INPUT_SIZES.get(self.model, DEFAULT_INPUT_SIZE))

    def input_size_for(self, own: ImageSize) -> ImageSize:
        return ImageSize(self.height or own.height, self.width or own.width)

    def resolved(self, own: ImageSize | None = None) -> CaptchaTrainConfig:
        """This config with the input size written out (0s taking `own`, by default the model's own), as a run
        saves it: a resumed run keeps its size even if a later version changes the default."""
        size = self.input_size if own is None else self.input_size_for(own)
        return replace(self, height=size.height, width=size.width)

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> CaptchaTrainConfig:
        """A saved config. imcaption 0.1 saved it flat, its augmentation once as a boolean, and trained
        without label smoothing before that field existed."""
        if "loop" not in state:
            loop_names = set(asdict(LoopConfig()))
            state = {
                "label_smoothing": 0.0,
                **{k: v for k, v in state.items() if k not in loop_names},
                "loop": {k: v for k, v in state.items() if k in loop_names},
            }
        if isinstance(state.get("augment"), bool):
            state = {**state, "augment": "full" if state["augment"] else "none"}
        return config_from_dict(cls, state)
