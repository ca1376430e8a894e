"""Caption decoders over a grid of image features, on one interface.

- `sat`: Show, Attend and Tell: additive attention over the grid at every step, GRU; its attention weights
  are returned for the doubly stochastic regularization and for plots.
- `nic`: Show and Tell: the pooled image is fed once, at t = -1, into an LSTM; then only words.
- `mrnn`: m-RNN: a word RNN, and a multimodal layer that joins word, recurrent state and image at every step.

Every decoder takes features (B, N, F) and offers `forward` (teacher forcing) and `start`/`step` (decoding).
Decoding state is a dict of tensors with the batch first, so beam search can reorder it generically.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from imcaption.models.attend_step import AttendGRUStep
from imcaption.models.encoder import ConvEncoder

DECODERS = ("sat", "nic", "mrnn")
State = dict[str, torch.Tensor]


@dataclass(frozen=True)
class CaptionerConfig:
    decoder: str = "sat"
    feature_dim: int = 128
    vocab_size: int = 100
    embed: int = 128
    hidden: int = 256
    attention: int = 128
    dropout: float = 0.2
    # A learned position code over a backbone's grid of this many cells (0: none; the from-scratch CNN adds
    # its own). Without it, an attention context says what was seen but not where: "to the left of" needs where.
    grid_cells: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


class SATDecoder(AttendGRUStep):
    """The attention + GRU step (attend_step.py) over the image features projected to the word embedding's width."""

    def __init__(self, c: CaptionerConfig) -> None:
        super().__init__()
        self.project = nn.Sequential(nn.Linear(c.feature_dim, c.embed), nn.ReLU())
        self.position = nn.Parameter(torch.zeros(1, c.grid_cells, c.embed)) if c.grid_cells else None
        self.add_step_layers(features=c.embed, vocab_size=c.vocab_size, embed=c.embed, hidden=c.hidden,
                             attention=c.attention, dropout=c.dropout)  # fmt: skip

    def start(self, features: torch.Tensor) -> State:
        grid = self.project(features)
        if self.position is not None:
            grid = grid + self.position
        return self.start_state(grid)


class NICDecoder(nn.Module):
    def __init__(self, c: CaptionerConfig) -> None:
        super().__init__()
        self.image = nn.Linear(c.feature_dim, c.embed)
        self.embedding = nn.Embedding(c.vocab_size, c.embed)
        self.cell = nn.LSTMCell(c.embed, c.hidden)
        self.output = nn.Sequential(nn.Dropout(c.dropout), nn.Linear(c.hidden, c.vocab_size))

    def start(self, features: torch.Tensor) -> State:
        # t = -1: the image is the LSTM's only look at the picture.
        batch = features.shape[0]
        zeros = features.new_zeros(batch, self.cell.hidden_size)
        hidden, cell = self.cell(self.image(features.mean(1)), (zeros, zeros))
        return {"hidden": hidden, "cell": cell}

    def step(self, token: torch.Tensor, state: State) -> tuple[torch.Tensor, State, torch.Tensor | None]:
        hidden, cell = self.cell(self.embedding(token), (state["hidden"], state["cell"]))
        return self.output(hidden), {"hidden": hidden, "cell": cell}, None


class MRNNDecoder(nn.Module):
    per_image_state = frozenset({"image"})  # beam search need not reorder it (engine.search)

    def __init__(self, c: CaptionerConfig) -> None:
        super().__init__()
        self.embedding = nn.Sequential(nn.Embedding(c.vocab_size, c.embed), nn.Linear(c.embed, c.embed), nn.ReLU())
        self.recurrent = nn.GRUCell(c.embed, c.hidden)
        self.from_word = nn.Linear(c.embed, c.hidden)
        self.from_state = nn.Linear(c.hidden, c.hidden)
        self.from_image = nn.Linear(c.feature_dim, c.hidden)
        self.output = nn.Sequential(nn.Dropout(c.dropout), nn.Linear(c.hidden, c.vocab_size))

    def start(self, features: torch.Tensor) -> State:
        image = self.from_image(features.mean(1))
        return {"hidden": features.new_zeros(features.shape[0], self.recurrent.hidden_size), "image": image}

    def step(self, token: torch.Tensor, state: State) -> tuple[torch.Tensor, State, torch.Tensor | None]:
        word = self.embedding(token)
        hidden = self.recurrent(word, state["hidden"])
        # The multimodal layer: word, recurrent state and image meet at every step (scaled tanh, as in m-RNN).
        multimodal = 1.7159 * torch.tanh((2 / 3) * (self.from_word(word) + self.from_state(hidden) + state["image"]))
        return self.output(multimodal), {**state, "hidden": hidden}, None


class CaptionModel(nn.Module):
    """A feature extractor (from-scratch CNN, or identity over cached backbone features) and a decoder."""

    def __init__(self, config: CaptionerConfig, encoder: ConvEncoder | None = None) -> None:
        super().__init__()
        if config.decoder not in DECODERS:
            raise ValueError(f"unknown decoder {config.decoder!r}; choose one of {', '.join(DECODERS)}")
        self.config = config
        self.encoder = encoder
        self.decoder = {"sat": SATDecoder, "nic": NICDecoder, "mrnn": MRNNDecoder}[config.decoder](config)

    @property
    def has_attention(self) -> bool:
        return self.config.decoder == "sat"

    def features(self, inputs: torch.Tensor) -> torch.Tensor:
        """Images (B, 3, H, W) through the encoder, or cached features (B, N, F) as they are -> (B, N, F)."""
        if self.encoder is None:
            return inputs
        return self.encoder.cells(inputs)

    def forward(self, inputs: torch.Tensor, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Teacher forcing over tokens (B, T) = <start> w1 ... wn <end> <pad>...: step t reads token t and
        predicts token t+1. -> logits (B, T-1, V) and attention (B, T-1, N) for sat, else None."""
        state = self.decoder.start(self.features(inputs))
        logits, maps = [], []
        for t in range(tokens.shape[1] - 1):
            step_logits, state, weights = self.decoder.step(tokens[:, t], state)
            logits.append(step_logits)
            if weights is not None:
                maps.append(weights)
        return torch.stack(logits, 1), (torch.stack(maps, 1) if maps else None)
