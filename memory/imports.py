"""Reading an import file (JSONL or CSV) into validated rows, all or nothing.

A file is checked whole before anything is written, so a mistake on line 9 000 is reported
at once with its line number instead of leaving half a file imported. In CSV, `metadata`
holds JSON; any column that is not a field of an item is kept in the item's metadata.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from django.core.exceptions import ValidationError
from pydantic import ValidationError as SchemaError

from aios_site.errors import schema_message
from memory.schemas import MemoryIn

MAX_BYTES = 20 * 1024 * 1024
MAX_ROWS = 100_000
MAX_REPORTED = 10  # errors listed before "and N more"
FIELDS = set(MemoryIn.model_fields)


class TooLarge(ValueError):
    pass


def read_rows(
    data: bytes, *, filename: str, namespace: str = "", kind: str = ""
) -> list[dict[str, Any]]:
    """The file's rows as JSON-ready dicts; `namespace` and `kind` fill rows that lack them."""
    if len(data) > MAX_BYTES:
        raise TooLarge(f"the file is larger than {MAX_BYTES // (1024 * 1024)} MB")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        reason = f"the file is not UTF-8 text ({error.reason} at byte {error.start})"
        raise ValidationError(reason) from error
    raw = _csv_rows(text) if _is_csv(filename, text) else _jsonl_rows(text)
    defaults = {"namespace": namespace, "kind": kind}
    rows, errors = [], []
    for line, row in raw:
        if isinstance(row, str):
            errors.append(f"line {line}: {row}")
            continue
        for field, value in defaults.items():
            if value and not row.get(field):
                row[field] = value
        try:
            rows.append(MemoryIn.model_validate(row).model_dump(mode="json", exclude_none=True))
        except SchemaError as error:
            errors.append(f"line {line}: {schema_message(error)}")
    _raise_if(errors)
    if not rows:
        raise ValidationError("the file holds no items")
    if len(rows) > MAX_ROWS:
        raise TooLarge(f"the file holds {len(rows)} items; at most {MAX_ROWS} at a time")
    return rows


def _is_csv(filename: str, text: str) -> bool:
    if filename.lower().endswith((".jsonl", ".ndjson", ".json")):
        return False
    return filename.lower().endswith(".csv") or not text.lstrip().startswith("{")


def _jsonl_rows(text: str):
    for line, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            row = json.loads(raw)
        except json.JSONDecodeError as error:
            yield line, f"not JSON ({error.msg} at column {error.colno})"
            continue
        yield line, row if isinstance(row, dict) else "each line must be a JSON object"


def _csv_rows(text: str):
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames or "content" not in reader.fieldnames:
        raise ValidationError("a CSV import needs a header row with at least a `content` column")
    for row in reader:
        line = reader.line_num
        if None in row:
            yield line, "more values than columns"
            continue
        yield line, _csv_item(row)


def _csv_item(row: dict[str, str]) -> dict[str, Any] | str:
    item: dict[str, Any] = {}
    extra: dict[str, str] = {}
    for column, value in row.items():
        if value is None or value == "":
            continue
        (item if column in FIELDS else extra)[column] = value
    if "metadata" in item:
        try:
            item["metadata"] = json.loads(item["metadata"])
        except json.JSONDecodeError:
            return "the metadata column must hold a JSON object"
        if not isinstance(item["metadata"], dict):
            return "the metadata column must hold a JSON object"
    if extra:
        item["metadata"] = {**extra, **item.get("metadata", {})}
    return item


def _raise_if(errors: list[str]) -> None:
    if not errors:
        return
    shown = errors[:MAX_REPORTED]
    more = len(errors) - len(shown)
    raise ValidationError(
        "nothing was imported: " + " | ".join(shown) + (f" | and {more} more" if more else "")
    )
