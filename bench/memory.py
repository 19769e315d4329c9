"""Memory's vector search at scale: HNSW build, recall@10 against exact search, latency, QPS.

    python bench/memory.py [--items 100000] [--workspaces 10] [--queries 500]
                           [--ef 20,40,64,100,200] [--real N] [--json PATH]

Starts its own embedded PostgreSQL + pgvector in a temporary directory.

The vectors are real MiniLM embeddings where the data allows: every distinct text of
shared/data (Bitext and Banking77 customer messages, ePQA product questions and answers,
about 10 000) is embedded with the model AIOS uses; the rest of the `--items` are
paraphrase-like neighbours of those (a real vector plus Gaussian noise, renormalised, at a
cosine of about 0.85 to it), so that the set has the clusters and near-duplicates of real
shop text rather than the uniform noise of random vectors. Queries are held-out texts,
never stored. The embeddings are cached in bench/.cache. `--real N` embeds at most N of the
texts (the rest of the items are then neighbours of those): for a quick run.

Items are loaded with COPY into memory's own table, spread over `--workspaces` workspaces;
the HNSW index (the migration's definition) is then built and timed. Each query searches one
workspace through `memory.selectors.nearest`, the ORM query recall uses (validity filter,
iterative index scan), and is compared with the exact top 10 of that workspace computed in
numpy. Latency is the wall time of that Python call, per query, one client; QPS is queries
per second with one client and with two in parallel. With `--json PATH`, the figures are
also written to PATH.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import statistics
import sys
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

CACHE = ROOT / "bench" / ".cache"
NOISE_COSINE = 0.85


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--workspaces", type=int, default=10)
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--real", type=int, help="embed at most this many texts for the items")
    parser.add_argument("--ef", default="20,40,64,100,200")
    parser.add_argument("--json", metavar="PATH", help="also write the figures to PATH")
    options = parser.parse_args()
    efs = [int(value) for value in options.ef.split(",")]

    from runtime import django_on_embedded_services, machine, percentile, summary, write_json

    texts = shared_texts()
    rng = np.random.default_rng(7)
    order = rng.permutation(len(texts))
    query_texts = [texts[i] for i in order[: options.queries]]
    # Never more real texts than items: the rest would not be stored.
    real_count = min(options.real or options.items, options.items)
    item_texts = [texts[i] for i in order[options.queries :]][:real_count]
    vectors = embeddings(query_texts + item_texts)
    queries, real = vectors[: options.queries], vectors[options.queries :]
    items, bases = grow(real, options.items, rng)
    contents = [item_texts[base] for base in bases]
    owners = rng.integers(0, options.workspaces, size=len(items))
    print(machine())
    print(
        f"{len(items)} items x {items.shape[1]} dims ({len(real)} real embeddings, the rest "
        f"neighbours at cosine ~{NOISE_COSINE}), {options.workspaces} workspaces, "
        f"{len(queries)} held-out queries"
    )

    figures: dict = {
        "items": len(items),
        "real_embeddings": len(real),
        "workspaces": options.workspaces,
        "queries": len(queries),
        "by_ef_search": [],
    }
    with django_on_embedded_services():
        workspace_ids, figures["load_s"] = load(items, contents, owners, options.workspaces)
        build_seconds = figures["hnsw_build_s"] = round(build_index(), 2)
        print(f"HNSW build (m=16, ef_construction=64): {build_seconds:.1f} s")
        print(explain(workspace_ids[0], queries[0]))
        print(explain_text(workspace_ids[0], query_texts[0]))
        targets = rng.integers(0, options.workspaces, size=len(queries))
        truth = exact_top10(items, owners, queries, targets)
        print("\n| ef_search | recall@10 | p50 ms | p95 ms | p99 ms | QPS (1 client) | QPS (2) |")
        print("| --- | --- | --- | --- | --- | --- | --- |")
        for ef in efs:
            found, latencies = search_all(workspace_ids, queries, targets, ef)
            recall = statistics.mean(
                len(set(got) & set(want)) / 10 for got, want in zip(found, truth, strict=True)
            )
            two = parallel_qps(workspace_ids, queries, targets, ef, clients=2)
            one = 1000 / statistics.mean(latencies)
            print(
                f"| {ef} | {recall:.3f} | {percentile(latencies, 0.5):.2f} | "
                f"{percentile(latencies, 0.95):.2f} | {percentile(latencies, 0.99):.2f} | "
                f"{one:.0f} | {two:.0f} |"
            )
            figures["by_ef_search"].append(
                {
                    "ef_search": ef,
                    "recall_at_10": round(recall, 4),
                    **{k: v for k, v in summary(latencies).items() if k != "n"},
                    "qps_1": round(one),
                    "qps_2": round(two),
                }
            )
        recall, short = without_iterative_scan(workspace_ids, queries, targets, truth, ef=40)
        figures["without_iterative_scan"] = {"ef_search": 40, "recall_at_10": round(recall, 4)}
        print(
            f"\nwithout iterative scan, ef_search 40: recall@10 {recall:.3f}, {short} of "
            f"{len(truth)} queries got fewer than 10 rows (the filter starves a plain index scan)"
        )
        hybrid = figures["hybrid_recall_ms"] = hybrid_latency(workspace_ids[0], query_texts[:100])
        print(
            "full hybrid recall, k=8 (its parts measured apart): "
            + ", ".join(
                f"{name} p50 {values['p50']:.1f} / p95 {values['p95']:.1f} ms"
                for name, values in hybrid.items()
            )
        )
    write_json(options.json, figures)


# -- data -------------------------------------------------------------------------------------


def shared_texts() -> list[str]:
    import csv

    data = ROOT.parent / "shared" / "data"
    seen: dict[str, None] = {}
    sources = [
        ("customer-messages/bitext-customer-support-tagged.csv", ["instruction"]),
        ("customer-messages/banking77-test.csv", ["text"]),
        ("product-questions/epqa-dev-first200q.csv", ["question", "candidate", "answer"]),
    ]
    for name, columns in sources:
        with (data / name).open(newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                for column in columns:
                    text = (row.get(column) or "").strip()
                    if text:
                        seen.setdefault(text, None)
    return list(seen)


def embeddings(texts: list[str]) -> np.ndarray:
    digest = hashlib.sha256("\n".join(texts).encode()).hexdigest()[:16]
    cached = CACHE / f"memory-vectors-{digest}.npy"
    if cached.exists():
        return np.load(cached)
    from agents.llm import local

    started = time.perf_counter()
    vectors = np.concatenate(
        [
            np.asarray(local.embed(texts[i : i + 256]), dtype=np.float32)
            for i in range(0, len(texts), 256)
        ]
    )
    print(f"embedded {len(texts)} texts in {time.perf_counter() - started:.0f} s (cached)")
    CACHE.mkdir(exist_ok=True)
    np.save(cached, vectors)
    return vectors


def grow(real: np.ndarray, count: int, rng) -> tuple[np.ndarray, np.ndarray]:
    """The real vectors, then neighbours of random real ones until there are `count`; and
    for each, the real vector (text) it comes from."""
    if count <= len(real):
        return real[:count], np.arange(count)
    picked = rng.integers(0, len(real), size=count - len(real))
    bases = real[picked]
    # For unit vectors in d dims, noise of norm s gives cosine ~ 1 / sqrt(1 + s^2).
    spread = np.sqrt(1 / NOISE_COSINE**2 - 1) / np.sqrt(real.shape[1])
    neighbours = bases + rng.normal(0, spread, size=bases.shape).astype(np.float32)
    neighbours /= np.linalg.norm(neighbours, axis=1, keepdims=True)
    return np.concatenate([real, neighbours]), np.concatenate([np.arange(len(real)), picked])


def load(
    items: np.ndarray, contents: list[str], owners: np.ndarray, workspaces: int
) -> tuple[list[int], float]:
    from django.db import connection

    from aios_site.accounts.models import Workspace

    ids = [
        Workspace.objects.create(slug=f"bench-{n}", name=f"Bench {n}").pk for n in range(workspaces)
    ]
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("DROP INDEX IF EXISTS memory_embedding")
        columns = (
            "workspace_id, namespace, key, version, kind, status, content, metadata, language, "
            "search_config, source_kind, source_ref, valid_from, pinned, embedding, "
            "created_at, updated_at"
        )
        with cursor.copy(f"COPY memory_memoryitem ({columns}) FROM STDIN") as copy:
            for n, (vector, owner) in enumerate(zip(items, owners, strict=True)):
                text = "[" + ",".join(f"{x:.6f}" for x in vector) + "]"
                copy.write_row(
                    (
                        ids[owner],
                        "bench",
                        f"k{n}",
                        1,
                        "fact",
                        "current",
                        f"item {n}",
                        "{}",
                        "",
                        "simple",
                        "import",
                        "bench",
                        "2026-01-01",
                        False,
                        text,
                        "2026-01-01",
                        "2026-01-01",
                    )
                )
        cursor.execute("ANALYZE memory_memoryitem")
        cursor.execute("SELECT min(id), max(id) FROM memory_memoryitem")
        # Row n of the COPY is pk n + 1 (a fresh table): results map back to rows by pk.
        assert cursor.fetchone() == (1, len(items)), "memory_memoryitem was not empty"
    seconds = time.perf_counter() - started
    print(f"loaded {len(items)} rows with COPY in {seconds:.1f} s")
    return ids, round(seconds, 2)


def build_index() -> float:
    from django.db import connection

    from aios_site.vectors import cosine_hnsw_index
    from memory.models import MemoryItem

    index = cosine_hnsw_index("memory_embedding")
    with connection.schema_editor() as editor:
        sql = str(index.create_sql(MemoryItem, editor))
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("SET maintenance_work_mem = '1GB'")
        cursor.execute(sql)
    return time.perf_counter() - started


def explain(workspace_id: int, vector: np.ndarray) -> str:
    from django.db import connection
    from pgvector.django import CosineDistance

    from memory.selectors import valid_at

    query = (
        valid_at(workspace_id=workspace_id, as_of=_now())
        .annotate(distance=CosineDistance("embedding", vector.tolist()))
        .order_by("distance")
        .values_list("pk", "distance")[:10]
    )
    with connection.cursor() as cursor:
        cursor.execute("SET hnsw.iterative_scan = relaxed_order")
        plan = query.explain()
        cursor.execute("RESET hnsw.iterative_scan")
    index_used = "memory_embedding" in plan
    return f"vector plan: {'HNSW index scan' if index_used else 'no HNSW index'}"


def explain_text(workspace_id: int, text: str) -> str:
    from memory import selectors

    items = selectors.valid_at(workspace_id=workspace_id, as_of=_now())
    with CaptureQueries() as captured:
        selectors._text_ranks(items, text, 32)
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN ANALYZE " + captured.sql, captured.params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    used = "memory_search_vector" in plan
    return f"text plan: {'GIN index' if used else 'no GIN index'}\n{plan}"


class CaptureQueries:
    """The last SQL statement Django ran, with its parameters."""

    def __enter__(self):
        from django.db import connection

        self.sql, self.params = "", ()

        def capture(execute, sql, params, many, context):
            self.sql, self.params = sql, params
            return execute(sql, params, many, context)

        self._wrapper = connection.execute_wrapper(capture)
        self._wrapper.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._wrapper.__exit__(*exc)


def _now():
    from django.utils import timezone

    return timezone.now()


def exact_top10(items, owners, queries, targets) -> list[list[int]]:
    """Row numbers (0-based, = pk - 1 of the COPY) of the exact 10 nearest in the workspace."""
    truth = []
    for vector, target in zip(queries, targets, strict=True):
        rows = np.flatnonzero(owners == target)
        scores = items[rows] @ vector
        truth.append(list(rows[np.argsort(-scores)[:10]]))
    return truth


# -- search -----------------------------------------------------------------------------------


def _search(workspace_id: int, vector: np.ndarray, ef: int) -> list[int]:
    from memory.selectors import nearest, valid_at

    rows = nearest(
        valid_at(workspace_id=workspace_id, as_of=_now()), vector.tolist(), 10, ef_search=ef
    )
    return [pk - 1 for pk, _ in rows]


def search_all(workspace_ids, queries, targets, ef) -> tuple[list[list[int]], list[float]]:
    for vector, target in zip(queries[:20], targets[:20], strict=True):  # warm the cache
        _search(workspace_ids[target], vector, ef)
    found, latencies = [], []
    for vector, target in zip(queries, targets, strict=True):
        started = time.perf_counter()
        found.append(_search(workspace_ids[target], vector, ef))
        latencies.append((time.perf_counter() - started) * 1000)
    return found, latencies


def parallel_qps(workspace_ids, queries, targets, ef, *, clients: int) -> float:
    from django.db import connection

    def work(share):
        for vector, target in share:
            _search(workspace_ids[target], vector, ef)
        connection.close()

    pairs = list(zip(queries, targets, strict=True))
    threads = [threading.Thread(target=work, args=(pairs[i::clients],)) for i in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return len(pairs) / (time.perf_counter() - started)


def without_iterative_scan(workspace_ids, queries, targets, truth, *, ef: int) -> tuple:
    """recall@10 with a plain index scan, and how many queries got fewer than 10 rows."""
    from django.db import connection, transaction
    from pgvector.django import CosineDistance

    from memory.selectors import valid_at

    recalls, short = [], 0
    for vector, target, want in zip(queries, targets, truth, strict=True):
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET LOCAL hnsw.ef_search = %s", [ef])
            rows = list(
                valid_at(workspace_id=workspace_ids[target], as_of=_now())
                .annotate(distance=CosineDistance("embedding", vector.tolist()))
                .order_by("distance")
                .values_list("pk", flat=True)[:10]
            )
        short += len(rows) < 10
        recalls.append(len({pk - 1 for pk in rows} & set(want)) / 10)
    return statistics.mean(recalls), short


def hybrid_latency(workspace_id: int, texts: list[str]) -> dict[str, dict[str, float]]:
    """The whole recall of an agent's step, and its parts: the query's embedding, the vector
    search, the text search."""
    from runtime import summary

    from agents.llm import embed_for_storage
    from memory import selectors

    items = selectors.valid_at(workspace_id=workspace_id, as_of=_now())
    parts: dict[str, list[float]] = {"total": [], "embed": [], "vector": [], "text": []}
    selectors.recall(workspace_id=workspace_id, query=texts[0])
    for text in texts:
        started = time.perf_counter()
        selectors.recall(workspace_id=workspace_id, query=text)
        parts["total"].append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        [vector] = embed_for_storage([text])
        parts["embed"].append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        selectors.nearest(items, vector, 32)
        parts["vector"].append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        selectors._text_ranks(items, text, 32)
        parts["text"].append((time.perf_counter() - started) * 1000)
    return {name: summary(values) for name, values in parts.items()}


if __name__ == "__main__":
    random.seed(7)
    main()
