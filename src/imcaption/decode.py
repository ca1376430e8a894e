"""Turning model outputs into words: greedy, beam search, and a lexicon constraint (prefix trie)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

import torch

from imcaption.models.ctc import CTCRecognizer
from imcaption.models.sat import SATRecognizer
from imcaption.text.char_tokenizer import END, PAD, START, CharTokenizer

NEG_INF = float("-inf")
State = dict[str, torch.Tensor]


@dataclass
class Decoded:
    words: list[str]
    confidences: list[float]
    # (B, steps, grid rows, grid cols) for attention models with greedy decoding; None otherwise.
    attention: torch.Tensor | None = None


class LexiconTrie:
    """Words as paths of token ids. `children[node, token]` is the next node or -1; a node that ends a
    word has an <end> edge to itself."""

    def __init__(self, words: Iterable[str], tokenizer: CharTokenizer) -> None:
        edges: list[dict[int, int]] = [{}]
        self.words = sorted(set(words))
        if not self.words:
            raise ValueError("lexicon is empty")
        for word in self.words:
            node = 0
            for token in tokenizer.encode(word):
                if token not in edges[node]:
                    edges.append({})
                    edges[node][token] = len(edges) - 1
                node = edges[node][token]
            edges[node][END] = node
        self.children = torch.full((len(edges), tokenizer.vocab_size), -1, dtype=torch.long)
        for node, out in enumerate(edges):
            for token, child in out.items():
                self.children[node, token] = child


@dataclass(frozen=True)
class SearchTokens:
    start: int
    end: int
    pad: int


class StepModel(Protocol):
    def step(self, token: torch.Tensor, state: State) -> tuple[torch.Tensor, State, torch.Tensor | None]: ...


def greedy_search(
    model: StepModel, state: State, batch: int, tokens: SearchTokens, max_steps: int, trie: LexiconTrie | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Most likely token at each step. -> token ids (B, T), log-probability (B), attention (B, T, N) or None."""
    token = torch.full((batch,), tokens.start, dtype=torch.long)
    node = torch.zeros(batch, dtype=torch.long)
    done = torch.zeros(batch, dtype=torch.bool)
    log_conf = torch.zeros(batch)
    chosen, maps = [], []
    for _ in range(max_steps):
        logits, state, weights = model.step(token, state)
        log_probs = torch.log_softmax(logits, dim=-1)
        if trie is not None:
            log_probs = log_probs.masked_fill(trie.children[node] < 0, NEG_INF)
        best, token = log_probs.max(dim=-1)
        token = torch.where(done, torch.full_like(token, tokens.pad), token)
        log_conf += torch.where(done, torch.zeros_like(best), best)
        if trie is not None:
            node = torch.where(done, node, trie.children[node, token])
        chosen.append(token)
        if weights is not None:
            maps.append(weights)
        done |= token == tokens.end
        if bool(done.all()):
            break
    return torch.stack(chosen, dim=1), log_conf, (torch.stack(maps, dim=1) if maps else None)


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
    cost, so it keeps its score while the others catch up. -> best token ids (B, T), their log-probability."""
    k = beam
    state = {name: value.repeat_interleave(k, dim=0) for name, value in state.items()}
    scores = torch.full((batch, k), NEG_INF)
    scores[:, 0] = 0.0
    token = torch.full((batch * k,), tokens.start, dtype=torch.long)
    node = torch.zeros(batch * k, dtype=torch.long)
    done = torch.zeros(batch * k, dtype=torch.bool)
    history = torch.zeros(batch * k, 0, dtype=torch.long)
    for _ in range(max_steps):
        logits, state, _ = model.step(token, state)
        log_probs = torch.log_softmax(logits, dim=-1)
        vocab = log_probs.shape[-1]
        if trie is not None:
            log_probs = log_probs.masked_fill(trie.children[node] < 0, NEG_INF)
        pad_only = torch.full((vocab,), NEG_INF)
        pad_only[tokens.pad] = 0.0
        log_probs = torch.where(done.unsqueeze(1), pad_only, log_probs)
        scores, flat = (scores.view(-1, 1) + log_probs).view(batch, k * vocab).topk(k, dim=-1)
        parent = (flat // vocab + torch.arange(batch).unsqueeze(1) * k).view(-1)
        token = (flat % vocab).view(-1)
        state = {name: value[parent] for name, value in state.items()}
        history, done, node = history[parent], done[parent], node[parent]
        history = torch.cat([history, token.unsqueeze(1)], dim=1)
        if trie is not None:
            node = torch.where(done, node, trie.children[node, token])
        done = done | (token == tokens.end)
        if bool(done.all()):
            break
    return history.view(batch, k, -1)[:, 0], scores[:, 0]


CAPTCHA_TOKENS = SearchTokens(START, END, PAD)


def sat_greedy(
    model: SATRecognizer, images: torch.Tensor, tokenizer: CharTokenizer, trie: LexiconTrie | None = None
) -> Decoded:
    ids, log_conf, maps = greedy_search(
        model, model.start(images), images.shape[0], CAPTCHA_TOKENS, model.max_length + 1, trie
    )
    rows, cols = model.encoder.config.grid
    attention = maps.view(images.shape[0], maps.shape[1], rows, cols)
    return Decoded([tokenizer.decode(seq) for seq in ids.tolist()], log_conf.exp().tolist(), attention)


def sat_beam(
    model: SATRecognizer, images: torch.Tensor, tokenizer: CharTokenizer, beam: int, trie: LexiconTrie | None = None
) -> Decoded:
    ids, scores = beam_search(
        model, model.start(images), images.shape[0], CAPTCHA_TOKENS, model.max_length + 1, beam, trie
    )
    return Decoded([tokenizer.decode(seq) for seq in ids.tolist()], scores.exp().tolist())


def ctc_greedy(log_probs: torch.Tensor, tokenizer: CharTokenizer) -> Decoded:
    """Best class per column; repeats merged, blanks dropped."""
    best, classes = log_probs.max(dim=-1)
    words = []
    for row in classes.tolist():
        collapsed = [c for i, c in enumerate(row) if c != PAD and (i == 0 or c != row[i - 1])]
        words.append(tokenizer.decode(collapsed))
    return Decoded(words, best.sum(dim=-1).exp().tolist())


def ctc_word_log_likelihood(log_probs: torch.Tensor, targets: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """log p(word | image) for every image and every word: the CTC forward algorithm, batched over both.

    log_probs (B, T, V); targets (W, L) padded token ids; lengths (W,) -> (B, W)."""
    words, max_len = targets.shape
    states = 2 * max_len + 1
    extended = torch.full((words, states), PAD, dtype=torch.long)
    extended[:, 1::2] = targets
    # A label may be skipped into from two states back unless it repeats the label before it.
    can_skip = torch.zeros(words, states, dtype=torch.bool)
    can_skip[:, 3::2] = targets[:, 1:] != targets[:, :-1]
    emissions = log_probs[:, :, extended]  # (B, T, W, S)
    batch, steps = log_probs.shape[:2]
    alpha = torch.full((batch, words, states), NEG_INF)
    alpha[:, :, :2] = emissions[:, 0, :, :2]
    pad = torch.full((batch, words, 1), NEG_INF)
    for t in range(1, steps):
        stay = alpha
        advance = torch.cat([pad, alpha[:, :, :-1]], dim=-1)
        skip = torch.cat([pad, pad, alpha[:, :, :-2]], dim=-1).masked_fill(~can_skip, NEG_INF)
        alpha = torch.logsumexp(torch.stack([stay, advance, skip]), dim=0) + emissions[:, t]
    last = (2 * lengths).view(1, -1, 1).expand(batch, -1, 1)
    end_label = alpha.gather(2, last - 1).squeeze(-1)
    end_blank = alpha.gather(2, last).squeeze(-1)
    return torch.logaddexp(end_label, end_blank)


def ctc_lexicon(log_probs: torch.Tensor, tokenizer: CharTokenizer, trie: LexiconTrie, chunk: int = 32) -> Decoded:
    """The lexicon word of highest CTC likelihood, exactly."""
    encoded = [tokenizer.encode(w) for w in trie.words]
    lengths = torch.tensor([len(e) for e in encoded])
    targets = torch.full((len(encoded), int(lengths.max())), PAD, dtype=torch.long)
    for row, ids in enumerate(encoded):
        targets[row, : len(ids)] = torch.tensor(ids)
    words, confidences = [], []
    for start in range(0, log_probs.shape[0], chunk):
        scores = ctc_word_log_likelihood(log_probs[start : start + chunk], targets, lengths)
        best, index = scores.max(dim=-1)
        words += [trie.words[i] for i in index.tolist()]
        confidences += best.exp().tolist()
    return Decoded(words, confidences)


@torch.no_grad()
def decode_batch(
    model: torch.nn.Module,
    images: torch.Tensor,
    tokenizer: CharTokenizer,
    beam: int = 1,
    trie: LexiconTrie | None = None,
) -> Decoded:
    """The one entry point: picks the search that fits the model."""
    if beam < 1:
        raise ValueError(f"beam width must be at least 1, got {beam}")
    if isinstance(model, SATRecognizer):
        if beam == 1:
            return sat_greedy(model, images, tokenizer, trie)
        return sat_beam(model, images, tokenizer, beam, trie)
    if isinstance(model, CTCRecognizer):
        if beam > 1:
            raise ValueError("beam search is for sat models; a ctc model decodes its best path (or use --lexicon)")
        log_probs = model(images)
        if trie is not None:
            return ctc_lexicon(log_probs, tokenizer, trie)
        return ctc_greedy(log_probs, tokenizer)
    raise TypeError(f"cannot decode a {type(model).__name__}")
