"""The offline backbone: a PhoBERT-architecture model built from the training text.

The Hugging Face hub is not always reachable, so the project builds, from the training
words, a `PhobertTokenizer` (fastBPE-style `vocab.txt` + `bpe.codes`, learned here) and
a randomly initialised `RobertaForTokenClassification` with PhoBERT's geometry rules
(256 tokens = 258 positions, pad 1, bos 0, eos 2). Everything downstream runs the same
code path as with the real `vinai/phobert-base-v2`.
"""

from __future__ import annotations

import collections
from pathlib import Path
from typing import Iterable

from transformers import PhobertTokenizer, RobertaConfig, RobertaForTokenClassification

from ..model.encoding import SHAPES

END = "</w>"


def learn_bpe(word_counts: dict[str, int], num_merges: int) -> list[tuple[str, str, int]]:
    """Sennrich-style BPE with incremental pair counts (a merge recounts only the words
    it touches, so a large corpus does not mean a slow build). Words end with `</w>` on their last symbol, as PhobertTokenizer expects."""
    words = [tuple(w[:-1]) + (w[-1] + END,) for w in word_counts]
    counts = list(word_counts.values())
    pair_counts: collections.Counter = collections.Counter()
    where: dict[tuple[str, str], set[int]] = collections.defaultdict(set)
    for index, (word, count) in enumerate(zip(words, counts)):
        for pair in zip(word, word[1:]):
            pair_counts[pair] += count
            where[pair].add(index)
    merges = []
    for _ in range(num_merges):
        if not pair_counts:
            break
        best, best_count = max(pair_counts.items(), key=lambda kv: (kv[1], kv[0]))
        if best_count < 2:
            break
        merges.append((best[0], best[1], best_count))
        merged = best[0] + best[1]
        for index in list(where.pop(best, ())):
            word, count = words[index], counts[index]
            for pair in zip(word, word[1:]):
                pair_counts[pair] -= count
                if pair_counts[pair] <= 0:
                    del pair_counts[pair]
                if pair != best:
                    where[pair].discard(index)
            new_word, i = [], 0
            while i < len(word):
                if i < len(word) - 1 and (word[i], word[i + 1]) == best:
                    new_word.append(merged)
                    i += 2
                else:
                    new_word.append(word[i])
                    i += 1
            words[index] = tuple(new_word)
            for pair in zip(new_word, new_word[1:]):
                pair_counts[pair] += count
                where[pair].add(index)
        pair_counts.pop(best, None)
    return merges


def _apply(word: str, ranks: dict[tuple[str, str], int]) -> list[str]:
    symbols = list(word[:-1]) + [word[-1] + END]
    while len(symbols) > 1:
        pairs = [(ranks.get(p, 1 << 30), i) for i, p in enumerate(zip(symbols, symbols[1:]))]
        rank, i = min(pairs)
        if rank == 1 << 30:
            break
        symbols[i:i + 2] = [symbols[i] + symbols[i + 1]]
    return symbols


def build_tokenizer_files(words: Iterable[str], directory: Path, vocab_size: int) -> None:
    """Write `vocab.txt` (`token count`) and `bpe.codes` (`left right count`) learned
    from `words` (PhoBERT surfaces, syllables joined by `_`)."""
    word_counts = collections.Counter(w for w in words if w and not any(c.isspace() for c in w))
    merges = learn_bpe(dict(word_counts), max(0, vocab_size))
    ranks = {(a, b): i for i, (a, b, _) in enumerate(merges)}
    token_counts: collections.Counter = collections.Counter()
    for word, count in word_counts.items():
        symbols = _apply(word, ranks)
        for symbol in symbols[:-1]:
            token_counts[symbol + "@@"] += count
        token_counts[symbols[-1][: -len(END)]] += count
    # every character seen gets a word-internal and a word-final entry, so known
    # characters never become <unk> whatever the merges do
    for word, count in word_counts.items():
        for char in word:
            token_counts[char + "@@"] += 0
            token_counts[char] += 0
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / "vocab.txt", "w", encoding="utf-8") as handle:
        for token, count in sorted(token_counts.items(), key=lambda kv: (-kv[1], kv[0])):
            if token not in ("<s>", "<pad>", "</s>", "<unk>", "<mask>"):
                handle.write(f"{token} {count}\n")
        handle.write("<mask> 0\n")
    with open(directory / "bpe.codes", "w", encoding="utf-8") as handle:
        for left, right, count in merges:
            handle.write(f"{left} {right} {count}\n")


def build_tiny_backbone(words: Iterable[str], labels: list[str], settings, work_dir: Path, max_length: int = 256):
    """(model, tokenizer): a fresh RobertaForTokenClassification + PhobertTokenizer."""
    words = [w.lower() for w in words] if settings.lowercase else list(words)
    build_tokenizer_files(words, work_dir, settings.vocab_size)
    tokenizer = PhobertTokenizer(str(work_dir / "vocab.txt"), str(work_dir / "bpe.codes"))
    config = RobertaConfig(
        vocab_size=len(tokenizer),
        hidden_size=settings.hidden_size,
        num_hidden_layers=settings.num_hidden_layers,
        num_attention_heads=settings.num_attention_heads,
        intermediate_size=settings.intermediate_size,
        max_position_embeddings=max_length + 2,
        type_vocab_size=len(SHAPES) if settings.word_shapes else 1,
        word_shapes=settings.word_shapes,
        lowercase_words=settings.lowercase,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
        tokenizer_class="PhobertTokenizer",
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        label2id={label: i for i, label in enumerate(labels)},
    )
    return RobertaForTokenClassification(config), tokenizer
