"""Fingerprints of the batches a run trained on: two runs saw the same batches when they match."""
import hashlib


def digest(batch: dict) -> str | None:
    """A short hash of a batch's token ids (None for a batch on an accelerator: no host sync)."""
    ids = batch["input_ids"]
    if ids.device.type != "cpu":
        return None
    return hashlib.blake2b(ids.contiguous().numpy().tobytes(), digest_size=8).hexdigest()


def combine(digests) -> str | None:
    """One hash for a run's batches; None when some were not hashed (on an accelerator)."""
    if any(d is None for d in digests):
        return None
    return hashlib.blake2b("".join(digests).encode(), digest_size=8).hexdigest()
