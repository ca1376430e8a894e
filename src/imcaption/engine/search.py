"""Model-agnostic search over token sequences: greedy, batched beam, a lexicon constraint (prefix trie),
and CTC best-path and exact CTC lexicon scoring. Models expose `start`/`step` (or CTC log-probabilities);
nothing here knows about captchas or captions."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

import torch

NEG_INF = float("-inf")
State = dict[str, torch.Tensor]


@dataclass(frozen=True)
class SearchTokens:
    start: int
    end: int
    pad: int


@dataclass
class Searched:
    """Token ids per image (a sequence may end with <end> and <pad>s), the probability of each, for
    attention models under greedy search the attention of each step, (B, T, N), and under greedy search and CTC
    best path the log-probability of each id (what a reader turns into per-letter confidences)."""

    ids: list[list[int]]
    confidences: list[float]
    attention: torch.Tensor | None = None
    id_log_probs: list[list[float]] | None = None


class LexiconTrie:
    """Words as paths of token ids. `children[node, token]` is the next node or -1; a node that ends a
    word has an <end> edge to itself."""

    def __init__(self, words: Iterable[str], encode: Callable[[str], list[int]], vocab_size: int, end: int) -> None:
        self.words = sorted(set(words))
        if not self.words:
            raise ValueError("lexicon is empty")
        self.sequences = [encode(word) for word in self.words]
        edges: list[dict[int, int]] = [{}]
        for sequence in self.sequences:
            node = 0
            for token in sequence:
                if token not in edges[node]:
                    edges.append({})
                    edges[node][token] = len(edges) - 1
                node = edges[node][token]
            edges[node][end] = node
        self.children = torch.full((len(edges), vocab_size), -1, dtype=torch.long)
        for node, out in enumerate(edges):
            for token, child in out.items():
                self.children[node, token] = child

    def to(self, device: torch.device) -> LexiconTrie:
        self.children = self.children.to(device)
        return self


class StepModel(Protocol):
    """`per_image_state` (optional): the state entries that every hypothesis of an image shares whatever it
    read (the image's features, say), which beam search then never reorders."""

    def step(self, token: torch.Tensor, state: State) -> tuple[torch.Tensor, State, torch.Tensor | None]: ...


def _device(state: State) -> torch.device:
    return next(iter(state.values())).device


def greedy_search(
    model: StepModel, state: State, batch: int, tokens: SearchTokens, max_steps: int, trie: LexiconTrie | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Most likely token at each step. -> token ids (B, T), log-probability (B), attention (B, T, N) or None."""
    device = _device(state)
    token = torch.full((batch,), tokens.start, dtype=torch.long, device=device)
    node = torch.zeros(batch, dtype=torch.long, device=device)
    done = torch.zeros(batch, dtype=torch.bool, device=device)
    log_conf = torch.zeros(batch, device=device)
    chosen, chosen_log_probs, maps = [], [], []
    for _ in range(max_steps):
        logits, state, weights = model.step(token, state)
        log_probs = torch.log_softmax(logits, dim=-1)
        if trie is not None:
            log_probs = log_probs.masked_fill(trie.children[node] < 0, NEG_INF)
        best, token = log_probs.max(dim=-1)
        token = torch.where(done, torch.full_like(token, tokens.pad), token)
        best = torch.where(done, torch.zeros_like(best), best)
        log_conf += best
        if trie is not None:
            node = torch.where(done, node, trie.children[node, token])
        chosen.append(token)
        chosen_log_probs.append(best)
        if weights is not None:
            maps.append(weights)
        done |= token == tokens.end
        if bool(done.all()):
            break
    attention = torch.stack(maps, dim=1) if maps else None
    return torch.stack(chosen, dim=1), log_conf, torch.stack(chosen_log_probs, dim=1), attention


def beam_search(
    model: StepModel,
    state: State,
    batch: int,
    tokens: SearchTokens,
    max_steps: int,
    beam: int,
    trie: LexiconTrie | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Batched beam search: B x K hypotheses advance together; a finished one only extends by <pad> at no
    cost, so it keeps its score while the others catch up. -> best token ids (B, T), their log-probability.
    Finished or not, hypotheses are ranked by the same summed log-probability, so where none reaches <end>
    within `max_steps` the best unfinished one comes back (all `max_steps` ids, no <end>), not nothing."""
    k, device = beam, _device(state)
    state = {name: value.repeat_interleave(k, dim=0) for name, value in state.items()}
    # Hypotheses only ever take over from hypotheses of the same image, so reordering leaves these unchanged;
    # for sat they are the feature grid and its keys, and copying them was a large share of a beam-3 reading.
    per_image = getattr(model, "per_image_state", frozenset())
    scores = torch.full((batch, k), NEG_INF, device=device)
    scores[:, 0] = 0.0
    token = torch.full((batch * k,), tokens.start, dtype=torch.long, device=device)
    node = torch.zeros(batch * k, dtype=torch.long, device=device)
    done = torch.zeros(batch * k, dtype=torch.bool, device=device)
    history = torch.zeros(batch * k, 0, dtype=torch.long, device=device)
    offsets = torch.arange(batch, device=device).unsqueeze(1) * k
    for _ in range(max_steps):
        logits, state, _ = model.step(token, state)
        log_probs = torch.log_softmax(logits, dim=-1)
        vocab = log_probs.shape[-1]
        if trie is not None:
            log_probs = log_probs.masked_fill(trie.children[node] < 0, NEG_INF)
        pad_only = torch.full((vocab,), NEG_INF, device=device)
        pad_only[tokens.pad] = 0.0
        log_probs = torch.where(done.unsqueeze(1), pad_only, log_probs)
        scores, flat = (scores.view(-1, 1) + log_probs).view(batch, k * vocab).topk(k, dim=-1)
        parent = (flat // vocab + offsets).view(-1)
        token = (flat % vocab).view(-1)
        state = {name: value if name in per_image else value[parent] for name, value in state.items()}
        history, done, node = history[parent], done[parent], node[parent]
        history = torch.cat([history, token.unsqueeze(1)], dim=1)
        if trie is not None:
            node = torch.where(done, node, trie.children[node, token])
        done = done | (token == tokens.end)
        if bool(done.all()):
            break
    return history.view(batch, k, -1)[:, 0], scores[:, 0]


def search(
    model: StepModel,
    state: State,
    batch: int,
    tokens: SearchTokens,
    max_steps: int,
    beam: int = 1,
    trie: LexiconTrie | None = None,
) -> Searched:
    """Greedy search for beam 1 (with attention, where the model has it), beam search above."""
    if beam < 1:
        raise ValueError(f"beam width must be at least 1, got {beam}")
    if beam > 1:
        ids, log_conf = beam_search(model, state, batch, tokens, max_steps, beam, trie)
        return Searched(ids.tolist(), log_conf.exp().tolist())
    ids, log_conf, id_log_probs, attention = greedy_search(model, state, batch, tokens, max_steps, trie)
    maps = None if attention is None else attention.cpu()
    return Searched(ids.tolist(), log_conf.exp().tolist(), maps, id_log_probs.tolist())


def ctc_best_path(log_probs: torch.Tensor, blank: int) -> Searched:
    """Best class per column; repeats merged, blanks dropped. log_probs (B, T, V)."""
    best, classes = log_probs.max(dim=-1)
    ids, id_log_probs = [], []
    for row, row_best in zip(classes.tolist(), best.tolist(), strict=True):
        # An emitted id's log-probability is that of the column where its run starts.
        starts = [i for i, c in enumerate(row) if c != blank and (i == 0 or c != row[i - 1])]
        ids.append([row[i] for i in starts])
        id_log_probs.append([row_best[i] for i in starts])
    return Searched(ids, best.sum(dim=-1).exp().tolist(), id_log_probs=id_log_probs)


def ctc_word_log_likelihood(
    log_probs: torch.Tensor, targets: torch.Tensor, lengths: torch.Tensor, blank: int
) -> torch.Tensor:
    """log p(word | image) for every image and every word: the CTC forward algorithm, batched over both.

    log_probs (B, T, V); targets (W, L) padded token ids; lengths (W,) -> (B, W)."""
    words, max_len = targets.shape
    states = 2 * max_len + 1
    device = log_probs.device
    extended = torch.full((words, states), blank, dtype=torch.long, device=device)
    extended[:, 1::2] = targets
    # A label may be skipped into from two states back unless it repeats the label before it.
    can_skip = torch.zeros(words, states, dtype=torch.bool, device=device)
    can_skip[:, 3::2] = targets[:, 1:] != targets[:, :-1]
    emissions = log_probs[:, :, extended]  # (B, T, W, S)
    batch, steps = log_probs.shape[:2]
    alpha = torch.full((batch, words, states), NEG_INF, device=device)
    alpha[:, :, :2] = emissions[:, 0, :, :2]
    pad = torch.full((batch, words, 1), NEG_INF, device=device)
    for t in range(1, steps):
        stay = alpha
        advance = torch.cat([pad, alpha[:, :, :-1]], dim=-1)
        skip = torch.cat([pad, pad, alpha[:, :, :-2]], dim=-1).masked_fill(~can_skip, NEG_INF)
        alpha = torch.logsumexp(torch.stack([stay, advance, skip]), dim=0) + emissions[:, t]
    last = (2 * lengths).view(1, -1, 1).expand(batch, -1, 1)
    end_label = alpha.gather(2, last - 1).squeeze(-1)
    end_blank = alpha.gather(2, last).squeeze(-1)
    return torch.logaddexp(end_label, end_blank)


def ctc_lexicon(log_probs: torch.Tensor, trie: LexiconTrie, blank: int, chunk: int = 32) -> Searched:
    """The lexicon word of highest CTC likelihood, exactly."""
    sequences: Sequence[list[int]] = trie.sequences
    lengths = torch.tensor([len(s) for s in sequences], device=log_probs.device)
    targets = torch.full((len(sequences), int(lengths.max())), blank, dtype=torch.long, device=log_probs.device)
    for row, ids in enumerate(sequences):
        targets[row, : len(ids)] = torch.tensor(ids)
    ids, confidences = [], []
    for start in range(0, log_probs.shape[0], chunk):
        scores = ctc_word_log_likelihood(log_probs[start : start + chunk], targets, lengths, blank)
        best, index = scores.max(dim=-1)
        ids += [list(sequences[i]) for i in index.tolist()]
        confidences += best.exp().tolist()
    return Searched(ids, confidences)
