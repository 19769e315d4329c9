"""The audit log: who did what to which object, why, and what it was before and after.

`audit_record` appends to the workspace's hash chain; `audit_verify` recomputes it. Entries
are written in the same transaction as the change they describe, so a change and its record
commit together or not at all.

An entry about a person (a shop's customer: a reply addressed to them) keeps its before,
after and reason sealed under that person's key (`AuditSubjectKey`); the chain hashes the
sealed form. Erasing the person (`audit_subject_forget`) deletes the key: the entries stay,
verify still passes, and nobody can read what they said. Which entries are about whom is
told by the apps that know (`register_subject_finder`): this layer knows no customers.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.utils import timezone

# Who acted, and canonical-JSON hashing, are the shared core's (aios_site/core); named here too.
from aios_site.core.actors import SETUP as SETUP
from aios_site.core.actors import Actor as Actor
from aios_site.core.hashing import digest as digest
from aios_site.core.hashing import plain as plain
from approvals.models import AuditEntry, AuditSubjectKey

log = logging.getLogger(__name__)

GENESIS = "0" * 64  # the previous hash of a workspace's first entry
HASHED = [
    "workspace_id",
    "seq",
    "created_at",
    "actor_kind",
    "actor_user_id",
    "actor_label",
    "run_id",
    "action",
    "object_type",
    "object_id",
    "object_label",
    "before",
    "after",
    "reason",
    "prev_hash",
]


# -- sealing what an entry says about a person ----------------------------------------------

SubjectFinder = Callable[..., str]
_subject_finders: list[SubjectFinder] = []


def register_subject_finder(finder: SubjectFinder) -> None:
    """`finder(workspace_id=, object_type=, before=, after=)` names the person an entry is
    about (any stable string, e.g. "customer:<store>:<email>"), or returns ""."""
    _subject_finders.append(finder)


def subject_digest(subject: str) -> str:
    """What the database keeps of who a key belongs to: an HMAC, not the email."""
    return hmac.new(
        f"aios-audit-subject:{settings.SECRET_KEY}".encode(), subject.encode(), hashlib.sha256
    ).hexdigest()


def _subject_of(workspace_id: int, object_type: str, before: Any, after: Any) -> str:
    for finder in _subject_finders:
        subject = finder(
            workspace_id=workspace_id, object_type=object_type, before=before, after=after
        )
        if subject:
            return subject
    return ""


def _fernet(key: str):
    from cryptography.fernet import Fernet

    return Fernet(key.encode())


def _subject_key(workspace_id: int, subject: str) -> tuple[str, str]:
    from cryptography.fernet import Fernet

    digest_ = subject_digest(subject)
    key, _ = AuditSubjectKey.objects.get_or_create(
        workspace_id=workspace_id,
        subject=digest_,
        defaults={"key": Fernet.generate_key().decode()},
    )
    return digest_, key.key


def _seal(value: Any, subject: str, key: str) -> Any:
    if value in (None, ""):
        return value
    token = _fernet(key).encrypt(json.dumps(value, cls=DjangoJSONEncoder).encode()).decode()
    return {"sealed": token, "subject": subject}


def _is_sealed(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {"sealed", "subject"}


def _open(value: dict[str, str], key: str) -> Any:
    return json.loads(_fernet(key).decrypt(value["sealed"].encode()))


def audit_unseal(value: Any, *, workspace_id: int) -> Any:
    """What a sealed value said, or None once its person was erased (plain values as they
    are)."""
    if not _is_sealed(value):
        return value
    key = AuditSubjectKey.objects.filter(
        workspace_id=workspace_id, subject=value["subject"]
    ).first()
    return None if key is None else _open(value, key.key)


# What the Audit page and API show instead of what an erased person's entries said.
ERASED = "(erased at the customer's request)"
UNREADABLE = "(sealed, and its key does not open it)"
READABLE = ("before", "after", "reason")  # the fields an entry may keep sealed


def _sealed_reason(reason: str) -> Any:
    """A sealed reason is kept as the JSON of its envelope (the column is text)."""
    if not reason.startswith('{"sealed"'):
        return reason
    try:
        envelope = json.loads(reason)
    except ValueError:
        return reason
    return envelope if _is_sealed(envelope) else reason


def audit_readable(entries: Iterable[AuditEntry]) -> list[AuditEntry]:
    """The entries as a member allowed to read the log sees them: sealed before, after and
    reason opened, or ERASED once their person's key is gone — never the envelope, whose
    subject names a key. One query for the keys of all of them.

    The instances are for showing only: what they hold no longer matches their hash. Each
    gets `erased`: ERASED on an entry about an erased person, else ""."""
    entries = list(entries)
    for entry in entries:
        entry.reason = _sealed_reason(entry.reason)
    keys = _keys_of(entries)
    for entry in entries:
        entry.erased = ""
        for name in READABLE:
            value = getattr(entry, name)
            if _is_sealed(value):
                key = keys.get((entry.workspace_id, value["subject"]))
                setattr(entry, name, _readable(value, key))
                entry.erased = ERASED if key is None else entry.erased
    return entries


def _keys_of(entries: list[AuditEntry]) -> dict[tuple[int, str], str]:
    wanted = {
        (entry.workspace_id, value["subject"])
        for entry in entries
        for value in (getattr(entry, name) for name in READABLE)
        if _is_sealed(value)
    }
    if not wanted:
        return {}
    rows = AuditSubjectKey.objects.filter(
        workspace_id__in={workspace for workspace, _ in wanted},
        subject__in={subject for _, subject in wanted},
    ).values_list("workspace_id", "subject", "key")
    return {(workspace, subject): key for workspace, subject, key in rows}


def _readable(value: dict[str, str], key: str | None) -> Any:
    from cryptography.fernet import InvalidToken

    if key is None:
        return ERASED
    try:
        return _open(value, key)
    except InvalidToken:  # edited after it was sealed (verify says so): show, do not fail
        return UNREADABLE


def audit_subject_forget(*, workspace_id: int, subject: str) -> int:
    """Destroys the person's key: what the log said about them can no longer be read."""
    deleted, _ = AuditSubjectKey.objects.filter(
        workspace_id=workspace_id, subject=subject_digest(subject)
    ).delete()
    return deleted


def entry_hash(fields: dict[str, Any]) -> str:
    return digest({name: fields[name] for name in HASHED})


def _fields(entry: AuditEntry) -> dict[str, Any]:
    fields = {name: getattr(entry, name) for name in HASHED}
    fields["created_at"] = entry.created_at.astimezone(UTC).isoformat()
    return fields


@transaction.atomic
def audit_record(
    *,
    workspace_id: int,
    actor: Actor,
    action: str,
    object_type: str,
    object_id: Any,
    object_label: str = "",
    before: Any = None,
    after: Any = None,
    reason: str = "",
) -> AuditEntry:
    """Appends one entry to the workspace's chain (serialised per workspace)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [f"audit:{workspace_id}"]
        )
    last = (
        AuditEntry.objects.filter(workspace_id=workspace_id)
        .order_by("-seq")
        .values_list("seq", "hash")
        .first()
    )
    seq, prev_hash = (last[0] + 1, last[1]) if last else (1, GENESIS)
    before, after = plain(before), plain(after)
    subject = _subject_of(workspace_id, object_type, before, after)
    if subject:
        sealed_by, key = _subject_key(workspace_id, subject)
        before, after = _seal(before, sealed_by, key), _seal(after, sealed_by, key)
        reason = json.dumps(_seal(reason, sealed_by, key)) if reason else ""
    entry = AuditEntry(
        workspace_id=workspace_id,
        seq=seq,
        created_at=timezone.now(),
        actor_kind=actor.kind,
        actor_user_id=actor.user_id,
        actor_label=actor.label[:200],
        run_id=actor.run_id,
        action=action,
        object_type=object_type,
        object_id=str(object_id)[:200],
        object_label=object_label[:200],
        before=before,
        after=after,
        reason=reason,
        prev_hash=prev_hash,
    )
    entry.hash = entry_hash(_fields(entry))
    entry.save(force_insert=True)
    transaction.on_commit(lambda: head_sign(workspace_id=workspace_id, seq=seq, hash=entry.hash))
    return entry


# -- signed heads: what the table's writer cannot rewind -------------------------------------
#
# The chain proves nothing about its end: deleting the newest entries leaves a shorter chain
# that verifies. So every committed entry also appends its (workspace, seq, hash), signed
# with a key derived from SECRET_KEY, to a file per day under the data directory — outside
# the database, where a database role (ours, or the owner's) cannot reach. A head newer than
# the newest entry is a truncation; a head that does not verify is a forgery. A crash between
# the commit and the append only leaves the head one entry behind, never ahead.


def _heads_dir() -> Path:
    configured = getattr(settings, "AIOS_AUDIT_HEADS_DIR", None)
    return Path(configured) if configured else Path(settings.DATA_DIR) / "audit-heads"


def _head_mac(workspace_id: int, seq: int, hash: str) -> str:
    key = hashlib.sha256(f"aios-audit-head:{settings.SECRET_KEY}".encode()).digest()
    return hmac.new(key, f"{workspace_id}:{seq}:{hash}".encode(), hashlib.sha256).hexdigest()


def head_sign(*, workspace_id: int, seq: int, hash: str) -> None:
    """Appends the signed head: one line, one write, so concurrent writers never interleave."""
    directory = _heads_dir()
    head = {"workspace": workspace_id, "seq": seq, "hash": hash}
    line = json.dumps({**head, "mac": _head_mac(workspace_id, seq, hash)}) + "\n"
    path = directory / f"{timezone.now():%Y-%m-%d}.jsonl"
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            os.write(fd, line.encode())
        finally:
            os.close(fd)
    except OSError:  # the entry is committed: a full disk must not turn that into an error
        log.exception("the signed audit head %s:%s could not be written", workspace_id, seq)


def _newest_heads() -> tuple[dict[int, dict[str, Any]], str]:
    """The newest signed head of each workspace, and the first forged head's file (or "")."""
    newest: dict[int, dict[str, Any]] = {}
    directory = _heads_dir()
    for path in sorted(directory.glob("*.jsonl")) if directory.is_dir() else []:
        for line in path.read_text().splitlines():
            try:
                head = json.loads(line)
                valid = hmac.compare_digest(
                    _head_mac(head["workspace"], head["seq"], head["hash"]), head["mac"]
                )
            except (ValueError, KeyError, TypeError):
                valid = False
            if not valid:
                return newest, path.name
            if head["seq"] > newest.get(head["workspace"], {"seq": 0})["seq"]:
                newest[head["workspace"]] = head
    return newest, ""


def _truncation(workspace_id: int | None, checked: int) -> Verdict | None:
    heads, forged = _newest_heads()
    if forged:
        return Verdict(False, checked, None, None, f"a signed head in {forged} is forged")
    for workspace, head in sorted(heads.items()):
        if workspace_id is not None and workspace != workspace_id:
            continue
        stored = (
            AuditEntry.objects.filter(workspace_id=workspace)
            .order_by("-seq")
            .values_list("seq", flat=True)
            .first()
            or 0
        )
        at_head = AuditEntry.objects.filter(workspace_id=workspace, seq=head["seq"]).first()
        if at_head is None:
            problem = (
                f"entries after {stored} are missing: a signed head names entry {head['seq']}"
                " (the log was truncated)"
            )
            return Verdict(False, checked, workspace, head["seq"], problem)
        if at_head.hash != head["hash"]:
            problem = "it is not the entry its signed head names (the log was rewritten)"
            return Verdict(False, checked, workspace, head["seq"], problem)
    return None


@dataclass
class Verdict:
    ok: bool
    checked: int
    workspace_id: int | None = None
    seq: int | None = None
    problem: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "checked": self.checked,
            "first_bad": None
            if self.ok
            else {"workspace": self.workspace_id, "seq": self.seq, "problem": self.problem},
        }


def audit_verify(*, workspace_id: int | None = None) -> Verdict:
    """Recomputes the chain (of one workspace, or of all) and reports the first bad entry:
    a hash that does not match its fields, a link to a previous hash that is not there, a
    missing sequence number, or newest entries gone that a signed head names."""
    entries = AuditEntry.objects.order_by("workspace_id", "seq")
    if workspace_id is not None:
        entries = entries.filter(workspace_id=workspace_id)
    checked, current, expected_seq, prev_hash = 0, None, 1, GENESIS
    for entry in entries.iterator(chunk_size=2000):
        if entry.workspace_id != current:
            current, expected_seq, prev_hash = entry.workspace_id, 1, GENESIS
        problem = _problem(entry, expected_seq, prev_hash)
        if problem:
            return Verdict(False, checked, entry.workspace_id, entry.seq, problem)
        checked += 1
        expected_seq, prev_hash = entry.seq + 1, entry.hash
    return _truncation(workspace_id, checked) or Verdict(True, checked)


def _problem(entry: AuditEntry, expected_seq: int, prev_hash: str) -> str:
    if entry.seq != expected_seq:
        return f"entry {expected_seq} is missing (next is {entry.seq})"
    if entry.prev_hash != prev_hash:
        return "its link to the previous entry does not match"
    if entry.hash != entry_hash(_fields(entry)):
        return "its content does not match its hash (edited after it was written)"
    return ""
