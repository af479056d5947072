"""Tokenizing a task's texts once: flat token ids per file, cached in memory and on disk.

A multirun's runs read the same files with the same tokenizer: the second finds the tokens in
memory (the process-wide TOKEN_CACHE), a new process finds them in `data.cache_dir`.
"""
import hashlib
from pathlib import Path

import torch

_CACHE_FORMAT = 1


class Encoded:
    """Token ids of many rows as flat tensors and offsets (cheap to cache and to slice)."""

    def __init__(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor, offsets: torch.Tensor):
        self.input_ids, self.token_type_ids, self.offsets = input_ids, token_type_ids, offsets

    @property
    def lengths(self) -> torch.Tensor:
        return self.offsets[1:] - self.offsets[:-1]

    def row(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        a, b = self.offsets[i], self.offsets[i + 1]
        return self.input_ids[a:b], self.token_type_ids[a:b]

    def state(self) -> dict:
        return {"input_ids": self.input_ids, "token_type_ids": self.token_type_ids, "offsets": self.offsets}


def encode(tokenizer, text_a, text_b, max_length: int) -> Encoded:
    out = tokenizer(text_a, text_b, truncation=True, max_length=max_length,
                    return_token_type_ids=True, return_attention_mask=False)
    lengths = torch.tensor([len(x) for x in out["input_ids"]], dtype=torch.int64)
    offsets = torch.zeros(len(lengths) + 1, dtype=torch.int64)
    torch.cumsum(lengths, 0, out=offsets[1:])
    flat = lambda key: torch.tensor([t for row in out[key] for t in row], dtype=torch.int32)  # noqa: E731
    return Encoded(flat("input_ids"), flat("token_type_ids"), offsets)


def tokenizer_fingerprint(tokenizer) -> str:
    """What makes two tokenizers produce the same ids: class, vocabulary and special tokens.

    A fast tokenizer keeps the truncation and padding settings of its last call in its
    backend; they are left out, else the key would change after the first file is tokenized
    and the next run of a multirun would miss the cache.
    """
    h = hashlib.sha256(type(tokenizer).__name__.encode())
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        truncation, padding = backend.truncation, backend.padding
        backend.no_truncation()
        backend.no_padding()
        try:
            h.update(backend.to_str().encode())
        finally:  # put back what the tokenizer's next call expects to find
            if truncation is not None:
                backend.enable_truncation(**truncation)
            if padding is not None:
                backend.enable_padding(**padding)
    else:
        h.update(repr(sorted(tokenizer.get_vocab().items())).encode())
    return h.hexdigest()[:16]


def texts_fingerprint(text_a: list[str], text_b: list[str] | None) -> str:
    """What a tokenizer is given: the same texts in the same order give the same key, whatever
    file, format or columns they were read from."""
    h = hashlib.sha256()
    for texts in (text_a, text_b):
        h.update(b"-" if texts is None else f"{len(texts)}|".encode() + "\0".join(texts).encode())
    return h.hexdigest()


class TokenCache:
    """Tokenized texts by (texts, tokenizer, max length): kept in memory for the next run of a
    multirun in this process, and as files in a folder (`data.cache_dir`) across processes."""

    def __init__(self):
        self.entries: dict[str, dict] = {}

    def clear(self) -> None:
        """Forget the tokens held in memory; the files stay."""
        self.entries.clear()

    def encode(self, tokenizer, text_a, text_b, max_length: int, folder: Path | None) -> Encoded:
        key = hashlib.sha256(f"{_CACHE_FORMAT}|{texts_fingerprint(text_a, text_b)}|"
                             f"{tokenizer_fingerprint(tokenizer)}|{max_length}".encode()).hexdigest()[:24]
        if key in self.entries:
            return Encoded(**self.entries[key])
        path = folder / f"{key}.pt" if folder is not None else None
        if path is not None and path.is_file():
            state = torch.load(path, weights_only=True)
        else:
            state = encode(tokenizer, text_a, text_b, max_length).state()
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_suffix(f".tmp{id(state)}")
                torch.save(state, tmp)
                tmp.replace(path)
        self.entries[key] = state
        return Encoded(**state)


TOKEN_CACHE = TokenCache()  # the process-wide cache the runs of a multirun share
