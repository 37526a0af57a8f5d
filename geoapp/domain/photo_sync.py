"""Keep a second photo store in step with the first (`geoapp photos sync SOURCE DEST`): the standby
machine's copy of the photos, originals and album PDFs, so they survive a database failover.

Every file in the store is named by its content's SHA-256 (domain/report_photos.py, domain/album.py:
original/ab/ab12….jpg, published/cd/cd34….jpg, albums/ef/ef56….pdf, and the pre-0005 ef/ef56….jpg),
so a file present under its name in DEST is the same file and is skipped without reading it, and a
file in SOURCE whose bytes do not hash to its name is damaged: it is reported and not copied (the
damage must not spread to the only other copy). Copies are written as the app writes the store
(report_photos.store_file: a temporary file, fsync, rename; 0640 in 0750 folders), so a reader of
DEST never sees half a file and a run interrupted half-way is finished by the next. Nothing is ever
deleted: the orphan sweep (`geoapp photos sweep`) runs on each store by itself.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

from .report_photos import store_file

_HASH_NAME = re.compile(r"[0-9a-f]{64}")


@dataclass
class SyncResult:
    copied: list[str] = field(default_factory=list)
    present: int = 0                                      # already in DEST under that name: skipped
    damaged: list[str] = field(default_factory=list)      # content does not match the name: not copied
    unnamed: list[str] = field(default_factory=list)      # not named by a SHA-256: not ours, not copied
    copied_bytes: int = 0

    def summary(self) -> str:
        return (f"{len(self.copied)} copied ({self.copied_bytes / 1e6:.1f} MB), {self.present} already present, "
                f"{len(self.damaged)} damaged (not copied), {len(self.unnamed)} not content-addressed (not copied)")


def store_files(root: Path):
    """Files of a store, relative to it, in a stable order; the app's temporary files (.name.….part,
    written at this moment) are left out."""
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if path.is_file() and not any(part.startswith(".") for part in rel.parts):
            yield rel.as_posix(), path


def sync_photo_store(source: Path, dest: Path) -> SyncResult:
    """Copy into `dest` every file of `source` that `dest` lacks, each checked against its name."""
    if not source.is_dir():
        raise FileNotFoundError(f"{source} is not a folder")
    result = SyncResult()
    for rel, path in store_files(source):
        stem = path.name.split(".", 1)[0]
        if not _HASH_NAME.fullmatch(stem):
            result.unnamed.append(rel)
            continue
        if (dest / rel).is_file():
            result.present += 1
            continue
        data = path.read_bytes()
        if hashlib.sha256(data).hexdigest() != stem:
            result.damaged.append(rel)
            continue
        store_file(dest, rel, data)
        result.copied.append(rel)
        result.copied_bytes += len(data)
    return result
