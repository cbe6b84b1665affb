"""The manifest: atomic snapshots, the journal of acknowledged batches, and bad files."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from oropendola_ls.workspace.indexer import relative_path
from oropendola_ls.workspace.manifest import FileEntry, Manifest, SkipEntry, workspace_id

SHA = hashlib.sha256(b"x").hexdigest()


def test_workspace_id() -> None:
    folder = "/home/jane/project"
    expected = "ws-" + hashlib.sha256(folder.encode()).hexdigest()[:16]
    assert workspace_id(folder) == expected
    assert workspace_id(Path(folder)) == expected
    assert workspace_id("/home/jane/project/sub/..") == expected


def test_journal_replays_acknowledged_batches(tmp_path: Path) -> None:
    manifest = Manifest.load(tmp_path / "ws", tmp_path / "index")
    manifest.record_batch({"a.py": FileEntry(1, 2, SHA), "b.py": FileEntry(3, 4, SHA)}, [])
    manifest.record_batch({}, ["a.py"])
    # Not saved: a crash here loses nothing acknowledged.
    again = Manifest.load(tmp_path / "ws", tmp_path / "index")
    assert again.files == {"b.py": FileEntry(3, 4, SHA)}
    again.save()
    assert not again.journal_path.exists()
    third = Manifest.load(tmp_path / "ws", tmp_path / "index")
    assert third.files == {"b.py": FileEntry(3, 4, SHA)}
    assert third.generation == 1


def test_torn_journal_line_and_old_generations_are_ignored(tmp_path: Path) -> None:
    manifest = Manifest.load(tmp_path / "ws", tmp_path / "index")
    manifest.record_batch({"a.py": FileEntry(1, 2, SHA)}, [])
    manifest.save()  # generation 1
    stale = {"generation": 0, "reset": True, "set": {}, "removed": []}
    with open(manifest.journal_path, "ab") as handle:
        handle.write(json.dumps(stale).encode() + b"\n")  # left by a crash before the unlink
        handle.write(b'{"generation": 1, "set": {"b.py": {"size": 1, "mtime_ns": 1, "sha')
    again = Manifest.load(tmp_path / "ws", tmp_path / "index")
    assert again.files == {"a.py": FileEntry(1, 2, SHA)}


def test_reset_keeps_the_skip_cache(tmp_path: Path) -> None:
    manifest = Manifest.load(tmp_path / "ws", tmp_path / "index")
    manifest.record_batch({"a.py": FileEntry(1, 2, SHA)}, [])
    manifest.remember_skip("logo.raw", SkipEntry(10, 20, "binary"))
    manifest.record_batch({"b.py": FileEntry(1, 2, SHA)}, [], reset=True)
    assert set(manifest.files) == {"b.py"}
    assert set(manifest.skipped) == {"logo.raw"}


def test_malformed_entries_are_dropped(tmp_path: Path) -> None:
    manifest = Manifest(tmp_path / "ws", tmp_path / "index")
    manifest.directory.mkdir()
    manifest.path.write_text(json.dumps({
        "version": 1, "redaction": 1, "generation": 3, "files": {
            "ok.py": {"size": 1, "mtime_ns": 2, "sha256": SHA},
            "bad-sha.py": {"size": 1, "mtime_ns": 2, "sha256": "nope"},
            "bad-size.py": {"size": -1, "mtime_ns": 2, "sha256": SHA},
            "not-a-dict.py": [1, 2, 3],
        },
        "skipped": {"x": {"size": 1, "mtime_ns": 1, "reason": "binary"}, "y": "garbage"},
    }))
    loaded = Manifest.load(tmp_path / "ws", tmp_path / "index")
    assert set(loaded.files) == {"ok.py"}
    assert set(loaded.skipped) == {"x"}
    assert loaded.dirty


def test_other_redaction_version_is_dropped(tmp_path: Path) -> None:
    manifest = Manifest(tmp_path / "ws", tmp_path / "index")
    manifest.directory.mkdir()
    manifest.path.write_text(json.dumps({
        "version": 1, "redaction": 0, "generation": 0,
        "files": {"ok.py": {"size": 1, "mtime_ns": 2, "sha256": SHA}},
    }))
    assert Manifest.load(tmp_path / "ws", tmp_path / "index").files == {}


def test_unreadable_or_odd_manifest_files(tmp_path: Path) -> None:
    manifest = Manifest(tmp_path / "ws", tmp_path / "index")
    manifest.directory.mkdir()
    for content in (b"\xff\xfe", b"[]", b'{"version": 1, "files": []}', b"null"):
        manifest.path.write_bytes(content)
        assert Manifest.load(tmp_path / "ws", tmp_path / "index").files == {}
    manifest.path.unlink()
    manifest.path.mkdir()  # reading fails with an OSError
    assert Manifest.load(tmp_path / "ws", tmp_path / "index").files == {}


def test_relative_path(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    assert relative_path(root, root / "a" / "b.py") == "a/b.py"
    assert relative_path(root, "a/b.py") == "a/b.py"
    assert relative_path(root, root) == ""
    assert relative_path(root, tmp_path / "other.py") is None
    assert relative_path(root, root / ".." / "root2" / "x") is None
    os.symlink(root, tmp_path / "alias")
    assert relative_path(tmp_path / "alias", root / "c.py") == "c.py"
