"""A recording's sealed manifest: what the recording held when it was finalised, under a key.

The document names the recording and its call, when it started and ended, whether it is
complete (and if not, why), and for each side: how many segments, the first and last index, where
its media ends (the last segment's end, ms from the recording's start), the indexes that never
reached storage, and every segment's index, SHA-256, start and duration. Its HMAC-SHA256 is taken
under a key derived from the recording's data key (``recordings.crypto.manifest_key``), so
someone who can edit the database but cannot unwrap the data key can neither forge a manifest
nor mend one after cutting segments away.

Verification compares what is stored now with the sealed document and says, in words, what
differs: a side cut at its start (its first segment gone), at its end (its media now ends earlier
than sealed), segments missing from the middle, added, or changed.

Pure functions: no Django, no files. ``recordings/services.py`` seals, ``recordings/export.py``
verifies (export and replay alike).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

VERSION = 1
SIDES = ("customer", "teller")
SIDE_WORDS = {"customer": ("customer side", "客户侧"), "teller": ("teller side", "柜员侧")}


@dataclass(frozen=True)
class Entry:
    """One stored segment, as the manifest sees it."""

    side: str
    index: int
    sha256: str
    start_ms: int
    duration_ms: int

    @property
    def end_ms(self) -> int:
        return self.start_ms + self.duration_ms


@dataclass(frozen=True)
class Finding:
    """One thing verification found, in English and Chinese."""

    en: str
    zh: str


def _seconds(ms: int) -> str:
    return f"{ms / 1000:.1f}"


def _indexes(values: Iterable[int]) -> str:
    return ", ".join(str(v) for v in values)


def sequence_gaps(entries: Iterable[Entry]) -> dict[str, list[int]]:
    """Per side with segments: the indexes between 0 and its last that are not there."""
    by_side: dict[str, set[int]] = {}
    for entry in entries:
        by_side.setdefault(entry.side, set()).add(entry.index)
    return {
        side: sorted(set(range(max(indexes) + 1)) - indexes)
        for side, indexes in by_side.items()
        if set(range(max(indexes) + 1)) - indexes
    }


def manifest_build(
    *,
    recording_id: str,
    call_id: str,
    started_at: datetime,
    ended_at: datetime,
    entries: Iterable[Entry],
    incomplete_reason: dict | None = None,
) -> dict:
    entries = sorted(entries, key=lambda e: (e.side, e.index))
    gaps = sequence_gaps(entries)
    sides = {}
    for side in SIDES:
        mine = [e for e in entries if e.side == side]
        sides[side] = {
            "segments": len(mine),
            "first_index": mine[0].index if mine else None,
            "last_index": mine[-1].index if mine else None,
            "media_end_ms": max((e.end_ms for e in mine), default=0),
            "never_stored": gaps.get(side, []),
            "list": [[e.index, e.sha256, e.start_ms, e.duration_ms] for e in mine],
        }
    return {
        "v": VERSION,
        "recording_id": str(recording_id),
        "call_id": str(call_id),
        "started_at": started_at.isoformat(),
        "ended_at": ended_at.isoformat(),
        "complete": not incomplete_reason,
        "incomplete_reason": dict(incomplete_reason or {}),
        "sides": sides,
    }


def manifest_bytes(document: dict) -> bytes:
    """The canonical form the HMAC is taken over (keys sorted, no spaces, ASCII only): the same
    bytes after a round trip through a JSON column."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def manifest_sign(key: bytes, document: dict) -> str:
    return hmac.new(key, manifest_bytes(document), hashlib.sha256).hexdigest()


def manifest_authentic(key: bytes, document: dict, mac: str) -> bool:
    if not document or not mac:
        return False
    return hmac.compare_digest(manifest_sign(key, document), mac)


def manifest_compare(document: dict, entries: Iterable[Entry]) -> list[Finding]:
    """What differs between an (authentic) sealed document and the segments stored now."""
    entries = list(entries)
    findings: list[Finding] = []
    sealed_sides = document.get("sides") or {}
    for side in SIDES:
        en, zh = SIDE_WORDS[side]
        sealed_side = sealed_sides.get(side) or {}
        sealed = {row[0]: row for row in sealed_side.get("list", [])}
        have = {e.index: e for e in entries if e.side == side}
        missing = sorted(set(sealed) - set(have))
        added = sorted(set(have) - set(sealed))
        if sealed and len(missing) == len(sealed):
            findings.append(
                Finding(
                    f"{en}: all {len(sealed)} sealed segments are missing — the whole side was "
                    f"removed",
                    f"{zh}：封存的 {len(sealed)} 段全部缺失——整侧录像被删除",
                )
            )
        elif missing:
            kept = sorted(set(sealed) & set(have))
            head = [i for i in missing if i < kept[0]]
            tail = [i for i in missing if i > kept[-1]]
            middle = [i for i in missing if kept[0] < i < kept[-1]]
            if head:
                which = (
                    f"segment {head[0]} is" if len(head) == 1 else f"segments {_indexes(head)} are"
                )
                findings.append(
                    Finding(
                        f"{en}: {which} missing — the recording was cut at its start",
                        f"{zh}：第 {_indexes(head)} 段缺失——录像开头被截去",
                    )
                )
            if tail:
                # Where what is left ends, by the sealed timings (a changed row is reported
                # on its own below).
                now_ends = max(sealed[i][2] + sealed[i][3] for i in kept)
                sealed_end = int(sealed_side.get("media_end_ms") or 0)
                findings.append(
                    Finding(
                        f"{en} ends at {_seconds(now_ends)} s but the sealed manifest says "
                        f"{_seconds(sealed_end)} s — the recording was cut at its end "
                        f"(segment(s) {_indexes(tail)} missing)",
                        f"{zh}录像止于 {_seconds(now_ends)} 秒，但封存清单记载为 "
                        f"{_seconds(sealed_end)} 秒——录像结尾被截去（缺第 {_indexes(tail)} 段）",
                    )
                )
            if middle:
                findings.append(
                    Finding(
                        f"{en}: segment(s) {_indexes(middle)} of the sealed {len(sealed)} are "
                        f"missing from the middle",
                        f"{zh}：封存的 {len(sealed)} 段中第 {_indexes(middle)} 段缺失",
                    )
                )
        if added:
            findings.append(
                Finding(
                    f"{en}: segment(s) {_indexes(added)} were not in the sealed manifest (added "
                    f"after sealing)",
                    f"{zh}：第 {_indexes(added)} 段不在封存清单中（封存后被添加）",
                )
            )
        changed = [
            i
            for i in sorted(set(sealed) & set(have))
            if list(sealed[i][1:]) != [have[i].sha256, have[i].start_ms, have[i].duration_ms]
        ]
        if changed:
            findings.append(
                Finding(
                    f"{en}: segment(s) {_indexes(changed)} are not the ones sealed (hash or "
                    f"timing changed)",
                    f"{zh}：第 {_indexes(changed)} 段与封存时不同（哈希或时间被改动）",
                )
            )
    return findings


def sequence_findings(entries: Iterable[Entry]) -> list[Finding]:
    """For a recording not sealed yet: each recorded side must start at segment 0 and have no
    hole (its end cannot be checked until the manifest is sealed)."""
    entries = list(entries)
    findings: list[Finding] = []
    gaps = sequence_gaps(entries)
    for side in SIDES:
        en, zh = SIDE_WORDS[side]
        missing = gaps.get(side, [])
        if 0 in missing:
            findings.append(
                Finding(
                    f"{en}: segment 0 is missing — the recording was cut at its start",
                    f"{zh}：第 0 段缺失——录像开头被截去",
                )
            )
        first = min((e.index for e in entries if e.side == side), default=0)
        middle = [i for i in missing if i > first]
        if middle:
            findings.append(
                Finding(
                    f"{side}: segment index(es) {middle} missing from the sequence",
                    f"{zh}：第 {_indexes(middle)} 段缺失",
                )
            )
    return findings


def incomplete_words(document: dict) -> Finding | None:
    reason = document.get("incomplete_reason") or {}
    if document.get("complete", True) and not reason:
        return None
    return Finding(reason.get("en", ""), reason.get("zh", reason.get("en", "")))
