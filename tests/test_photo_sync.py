"""`geoapp photos sync SOURCE DEST`: the standby's photo store kept in step with the primary's
(geoapp/domain/photo_sync.py). Real files in temporary folders; no database is involved."""
from __future__ import annotations

import hashlib
import stat

from click.testing import CliRunner

from geoapp.cli import photos_sync
from geoapp.domain.photo_sync import sync_photo_store
from geoapp.domain.report_photos import store_file


def put(store, folder: str, data: bytes, ext: str) -> str:
    """A file as the app stores it: named by its content's SHA-256."""
    digest = hashlib.sha256(data).hexdigest()
    return store_file(store, f"{folder}/{digest[:2]}/{digest}.{ext}", data)


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_missing_files_are_copied_with_the_stores_modes(tmp_path):
    src, dst = tmp_path / "primary", tmp_path / "standby"
    rels = [put(src, "published", b"published jpeg", "jpg"), put(src, "original", b"original with gps", "jpg"),
            put(src, "albums", b"%PDF album", "pdf")]
    result = sync_photo_store(src, dst)
    assert sorted(result.copied) == sorted(rels)
    assert result.present == 0 and result.damaged == [] and result.copied_bytes == sum(
        len((src / r).read_bytes()) for r in rels)
    for rel in rels:
        assert (dst / rel).read_bytes() == (src / rel).read_bytes()
        assert mode(dst / rel) == 0o640
        assert mode((dst / rel).parent) == 0o750
    assert not [p for p in dst.rglob("*") if p.name.startswith(".")]  # no temporary file left behind


def test_files_already_present_are_skipped_and_a_second_run_changes_nothing(tmp_path):
    src, dst = tmp_path / "primary", tmp_path / "standby"
    first = put(src, "published", b"one", "jpg")
    put(dst, "published", b"one", "jpg")
    second = put(src, "published", b"two", "jpg")
    result = sync_photo_store(src, dst)
    assert result.copied == [second] and result.present == 1
    before = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in dst.rglob("*") if p.is_file()}
    again = sync_photo_store(src, dst)
    assert again.copied == [] and again.present == 2 and again.damaged == []
    assert {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in dst.rglob("*") if p.is_file()} == before
    assert (dst / first).read_bytes() == b"one"


def test_a_file_whose_content_does_not_match_its_name_is_refused(tmp_path):
    src, dst = tmp_path / "primary", tmp_path / "standby"
    good = put(src, "published", b"good", "jpg")
    bad = put(src, "published", b"bit rot ahead", "jpg")
    (src / bad).write_bytes(b"bit rot happened")
    (src / "published" / "notes.txt").write_text("not a content-addressed file")
    (src / "published" / f".{hashlib.sha256(b'x').hexdigest()}.jpg.1234.part").write_bytes(b"x")  # being written
    result = sync_photo_store(src, dst)
    assert result.copied == [good]
    assert result.damaged == [bad]
    assert result.unnamed == ["published/notes.txt"]
    assert not (dst / bad).exists() and not (dst / "published" / "notes.txt").exists()
    assert sorted(p.name for p in dst.rglob("*") if p.is_file()) == [good.rsplit("/", 1)[1]]


def test_the_command_prints_counts_and_fails_on_damage(tmp_path):
    src, dst = tmp_path / "primary", tmp_path / "standby"
    put(src, "published", b"a", "jpg")
    runner = CliRunner()
    ok = runner.invoke(photos_sync, [str(src), "--to", str(dst)])
    assert ok.exit_code == 0, ok.output
    assert "1 copied" in ok.output and "0 already present" in ok.output
    bad = put(src, "published", b"b", "jpg")
    (src / bad).write_bytes(b"c")
    failed = runner.invoke(photos_sync, [str(src), str(dst)])
    assert failed.exit_code == 1
    assert "1 already present" in failed.output and "1 damaged" in failed.output
    assert bad in failed.output  # the damaged file is named
    assert runner.invoke(photos_sync, [str(src)]).exit_code == 2  # no DEST at all
