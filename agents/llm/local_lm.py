"""An optional causal language model that runs on this machine's CPU, offline.

`AIOS_LOCAL_LM_PATH` names a directory holding a transformers causal LM and its tokenizer in
`save_pretrained` layout. Unset means "no local language model"; the embedding and language
tiers in `local.py` do not need it. The model is loaded once per process per directory, and
one generation runs at a time: on a small CPU a second one would only split the cores.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

from agents.llm.local import _threads
from agents.pipelines import PermanentError

# Bounds the CPU time and memory one prompt can cost, whatever window the model has.
MAX_INPUT_TOKENS = 2048
# For models whose config does not say how long a sequence may be.
FALLBACK_CONTEXT_WINDOW = 2048


class LocalModelNotConfigured(Exception):
    """AIOS_LOCAL_LM_PATH is not set: this machine has no local language model."""


class _Loaded:
    def __init__(self, tokenizer: Any, model: Any) -> None:
        self.tokenizer = tokenizer
        self.model = model
        self.generating = threading.Lock()


_lock = threading.Lock()
_loaded: dict[Path, _Loaded] = {}


def configured_path() -> str:
    """The setting when Django has it, else the environment (scripts outside Django)."""
    from django.conf import settings

    value = getattr(settings, "AIOS_LOCAL_LM_PATH", None) if settings.configured else None
    if value is None:
        value = os.environ.get("AIOS_LOCAL_LM_PATH", "")
    return str(value).strip()


def is_configured() -> bool:
    return bool(configured_path())


def model_name() -> str:
    path = configured_path()
    if not path:
        raise LocalModelNotConfigured("AIOS_LOCAL_LM_PATH is not set")
    return "local:" + Path(path).expanduser().name


def _load(path: Path) -> _Loaded:
    with _lock:
        if path not in _loaded:
            _loaded[path] = _load_from_disk(path)
        return _loaded[path]


def _load_from_disk(path: Path) -> _Loaded:
    if not path.is_dir():
        raise PermanentError(f"local language model directory {path} does not exist")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.set_num_threads(_threads())
    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
        model = AutoModelForCausalLM.from_pretrained(path)
    except Exception as error:  # whatever broke, loading the same files again will not help
        raise PermanentError(
            f"could not load the local language model at {path}: {error}"
        ) from error
    model.eval()
    return _Loaded(tokenizer, model)


def _prompt_ids(tokenizer: Any, messages: list[dict[str, str]]) -> list[int]:
    """The model's own chat format when its tokenizer has one, else a plain transcript."""
    if getattr(tokenizer, "chat_template", None):
        text = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        # The template already wrote any special tokens the model expects.
        return list(tokenizer(text, add_special_tokens=False)["input_ids"])
    lines = [f"{message['role']}: {message['content']}" for message in messages]
    return list(tokenizer("\n".join([*lines, "assistant:"]))["input_ids"])


def _context_window(model: Any, tokenizer: Any) -> int:
    window = getattr(model.config, "max_position_embeddings", None)
    if not window:
        # Tokenizers without a limit report a huge sentinel (int(1e30)).
        limit = getattr(tokenizer, "model_max_length", 0) or 0
        window = limit if 0 < limit < 1_000_000 else FALLBACK_CONTEXT_WINDOW
    return int(window)


def _budget(model: Any, tokenizer: Any, max_tokens: int) -> tuple[int, int]:
    """(input tokens kept, new tokens allowed): together they fit in the model's window."""
    window = _context_window(model, tokenizer)
    new_tokens = min(max_tokens, max(1, window // 2))
    return min(MAX_INPUT_TOKENS, window - new_tokens), new_tokens


def _keep_end(ids: list[int], limit: int, tokenizer: Any) -> list[int]:
    """The end of a conversation matters most: drop from the left, but keep a leading special
    token (BOS), which models trained with one expect to see first."""
    if len(ids) <= limit:
        return ids
    if limit > 1 and ids[0] in set(tokenizer.all_special_ids):
        return ids[:1] + ids[len(ids) - limit + 1 :]
    return ids[len(ids) - limit :]


def _pad_token_id(tokenizer: Any, model: Any) -> int | None:
    if tokenizer.pad_token_id is not None:
        return tokenizer.pad_token_id
    eos = model.generation_config.eos_token_id
    return eos[0] if isinstance(eos, list) else eos


def _generate_ids(loaded: _Loaded, ids: list[int], new_tokens: int, temperature: float) -> Any:
    import torch

    # Greedy when temperature is 0, so the same prompt always gives the same answer.
    decoding: dict[str, Any] = {"do_sample": False}
    if temperature and temperature > 0:  # callers pass None for "not said"
        decoding = {"do_sample": True, "temperature": temperature}
    input_ids = torch.tensor([ids])
    with loaded.generating, torch.inference_mode():
        output = loaded.model.generate(
            input_ids=input_ids,
            attention_mask=torch.ones_like(input_ids),
            max_new_tokens=new_tokens,
            pad_token_id=_pad_token_id(loaded.tokenizer, loaded.model),
            **decoding,
        )
    return output[0, len(ids) :]


def generate(
    messages: list[dict[str, str]], *, max_tokens: int, temperature: float = 0.0
) -> dict[str, Any]:
    """One chat completion from the local model, shaped like the remote tier's answers."""
    path = configured_path()
    if not path:
        raise LocalModelNotConfigured("AIOS_LOCAL_LM_PATH is not set")
    if max_tokens < 1:
        raise PermanentError(f"max_tokens must be at least 1, got {max_tokens}")
    loaded = _load(Path(path).expanduser().resolve())
    input_limit, new_tokens = _budget(loaded.model, loaded.tokenizer, max_tokens)
    ids = _keep_end(_prompt_ids(loaded.tokenizer, messages), input_limit, loaded.tokenizer)
    new_ids = _generate_ids(loaded, ids, new_tokens, temperature)
    return {
        "content": loaded.tokenizer.decode(new_ids, skip_special_tokens=True).strip(),
        "model": model_name(),
        "usage": {"prompt_tokens": len(ids), "completion_tokens": len(new_ids)},
        "tier": "local",
    }
