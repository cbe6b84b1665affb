"""Listing and classifying a folder: ignore rules, git against the plain walk, skip reasons."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from oropendola_ls.workspace.scanner import ScanResult, scan_folder
from tests.workspace.conftest import git, requires_git, write

Tree = Callable[..., Path]


def names(result: ScanResult) -> set[str]:
    return {c.relpath for c in result.candidates}


IGNORE_TREE: dict[str, str | bytes] = {
    ".gitignore": "\n".join([
        "# comments and blank lines are ignored", "",
        "*.log", "!keep.log", "/build-out/", "tmp/", "**/cache/**", "docs/**/*.draft",
        "secret-dir/", "!secret-dir/allowed.txt", r"\#literal-hash", "trailing-space\\ ",
        "out", "*.o",
    ]) + "\n",
    "app.py": "print('app')\n",
    "app.log": "log\n",
    "keep.log": "kept\n",
    "build-out/x.js": "x\n",
    "src/build-out/y.js": "not anchored: kept\n",
    "src/tmp/t.py": "dir pattern at any depth\n",
    "src/cache/deep/c.py": "double star\n",
    "docs/a/b/page.draft": "draft\n",
    "docs/a/b/page.md": "page\n",
    "secret-dir/allowed.txt": "git cannot re-include inside an excluded directory\n",
    "#literal-hash": "ignored by an escaped pattern\n",
    "out": "a file named out\n",
    "lib/out/generated.py": "a directory named out\n",
    "main.o": "object\n",
    "pkg/.gitignore": "*.tmp\n!important.tmp\nlocal.py\n",
    "pkg/a.tmp": "ignored by the nested file\n",
    "pkg/important.tmp": "re-included by the nested file\n",
    "pkg/local.py": "ignored\n",
    "pkg/sub/local.py": "ignored at any depth below pkg\n",
    "pkg/sub/keep.py": "kept\n",
    "other/local.py": "not under pkg: kept\n",
    "other/.gitignore": "!app.log\n",
    "other/app.log": "the deeper file re-includes it\n",
    ".oropendolaignore": "fixtures/\n*.snap\n",
    "fixtures/big.json": "{}\n",
    "tests/x.snap": "snapshot\n",
    "tests/test_x.py": "def test(): pass\n",
    "tests/.oropendolaignore": "!x.snap\nslow_*.py\n",
    "tests/slow_1.py": "slow\n",
    "notes/draft.md": "excluded by the setting\n",
    "notes/final.md": "kept\n",
    "data/huge.csv": "excluded by the setting\n",
}
EXCLUDE = ("notes/draft.md", "**/*.csv")
EXPECTED = {
    ".gitignore", ".oropendolaignore", "app.py", "keep.log", "src/build-out/y.js",
    "docs/a/b/page.md", "pkg/.gitignore", "pkg/important.tmp",
    "pkg/sub/keep.py", "other/local.py", "other/.gitignore", "other/app.log", "tests/x.snap",
    "tests/test_x.py", "tests/.oropendolaignore", "notes/final.md",
}


def test_walk_honours_every_ignore_rule(tree: Tree) -> None:
    root = tree(IGNORE_TREE)
    result = scan_folder(root, exclude=EXCLUDE, use_git=False)
    assert result.mode == "walk"
    assert names(result) == EXPECTED
    assert not result.skipped


@requires_git
@pytest.mark.parametrize("commit", [False, True])
def test_git_and_walk_give_the_same_candidates(tree: Tree, commit: bool) -> None:
    root = tree(IGNORE_TREE, git_repo=True, commit=commit)
    walked = scan_folder(root, exclude=EXCLUDE, use_git=False)
    listed = scan_folder(root, exclude=EXCLUDE)
    assert listed.mode == "git"
    assert names(listed) == names(walked) == EXPECTED
    assert listed.skipped == walked.skipped


@requires_git
def test_git_and_walk_agree_on_skips(tree: Tree) -> None:
    files: dict[str, str | bytes] = {
        ".gitignore": "ignored/\n",
        "ignored/node_modules/x.js": "never counted: ignored first\n",
        "node_modules/pkg/index.js": "generated\n",
        "web/node_modules/pkg/index.js": "generated\n",
        "package-lock.json": "{}\n",
        "app.min.js": "x\n",
        ".env": "A=1\n",
        "logo.png": b"\x89PNG\r\n",
        "blob.raw": b"\x00\x01\x02",
        "src/main.py": "x = 1\n",
        "venvy/pyvenv.cfg": "home = /usr\n",
        "venvy/lib/site.py": "virtualenv\n",
    }
    root = tree(files, git_repo=True)
    walked = scan_folder(root, use_git=False)
    listed = scan_folder(root)
    assert names(listed) == names(walked) == {".gitignore", "blob.raw", "src/main.py"}
    assert listed.skipped == walked.skipped == {
        "generated": 5, "secret_file": 1, "binary": 1,
    }


@requires_git
def test_git_lists_untracked_nested_repositories_by_walking_them(tree: Tree) -> None:
    root = tree({"a.py": "a\n"}, git_repo=True, commit=True)
    write(root, {"inner/b.py": "b\n", "inner/.gitignore": "*.gen\n", "inner/c.gen": "c\n"})
    git(root / "inner", "init", "-q")
    result = scan_folder(root)
    assert result.mode == "git"
    assert names(result) == {"a.py", "inner/b.py", "inner/.gitignore"}


@requires_git
def test_deleted_tracked_file_is_not_a_candidate(tree: Tree) -> None:
    root = tree({"a.py": "a\n", "b.py": "b\n"}, git_repo=True, commit=True)
    (root / "b.py").unlink()
    result = scan_folder(root)
    assert names(result) == {"a.py"}
    assert not result.skipped


def test_falls_back_to_the_walk_without_git(tree: Tree, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tree({"a.py": "a\n", ".gitignore": "*.tmp\n", "b.tmp": "b\n"})
    monkeypatch.setenv("PATH", str(root / "no-such-dir"))
    result = scan_folder(root)
    assert result.mode == "walk"
    assert names(result) == {"a.py", ".gitignore"}


@requires_git
def test_scoped_scan(tree: Tree) -> None:
    root = tree({"a.py": "a\n", "src/b.py": "b\n", "src/c.py": "c\n", "src/x.log": "x\n",
                 ".gitignore": "*.log\n", "other/d.py": "d\n"}, git_repo=True)
    for use_git in (True, False):
        result = scan_folder(root, only=["src", "a.py", "missing.py"], use_git=use_git)
        assert names(result) == {"a.py", "src/b.py", "src/c.py"}, use_git


# -- skip reasons ---------------------------------------------------------------------------------


@pytest.fixture
def unix_socket(tmp_path: Path) -> Iterator[Callable[[Path], None]]:
    sockets: list[socket.socket] = []

    def make(path: Path) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(str(path))
        sockets.append(sock)

    yield make
    for sock in sockets:
        sock.close()


def special_tree(tree: Tree, make_socket: Callable[[Path], None]) -> Path:
    root = tree({
        "ok.py": "print('ok')\n",
        "target.py": "print('target')\n",
        "ignored-target/real.py": "reached through a link only\n",
        ".gitignore": "ignored-target/\n",
        ".env": "CANARY=1\n",
        "node_modules/a/index.js": "x\n",
        "sub-of-root/keep.py": "kept\n",
    })
    os.symlink("..", root / "parent")
    with open(root / "huge.txt", "wb") as handle:
        handle.truncate(50 * 1024 * 1024)  # sparse: 50 MB that take no disk
    os.mkfifo(root / "pipe")
    make_socket(root / "sock")
    os.symlink("loop_b", root / "loop_a")
    os.symlink("loop_a", root / "loop_b")
    os.symlink("self", root / "self")
    os.symlink(".", root / "here")
    os.symlink("..", root / "sub-of-root" / "back")
    os.symlink("/etc", root / "etc-link")
    os.symlink("/etc/hostname", root / "hostname-link")
    os.symlink("does-not-exist", root / "dangling")
    os.symlink("target.py", root / "dup-link.py")
    os.symlink("ignored-target/real.py", root / "via-link.py")
    os.symlink("ignored-target", root / "dir-link")
    os.symlink(".env", root / "innocent.txt")
    return root


@pytest.mark.parametrize("use_git", [False, pytest.param(True, marks=requires_git)])
def test_every_scan_skip_reason(tree: Tree, unix_socket: Callable[[Path], None],
                                use_git: bool) -> None:
    root = special_tree(tree, unix_socket)
    if use_git:
        git(root, "init", "-q")
    result = scan_folder(root, use_git=use_git)
    assert names(result) == {"ok.py", "target.py", ".gitignore", "via-link.py",
                             "sub-of-root/keep.py"}
    expected = {
        "too_large": ["huge.txt"],
        "not_regular": ["pipe", "sock"],
        "symlink_loop": ["here", "loop_a", "loop_b", "self", "sub-of-root/back"],
        "symlink_outside": ["etc-link", "hostname-link", "parent"],
        "unreadable": ["dangling"],
        "symlink_duplicate": ["dir-link", "dup-link.py"],
        "secret_file": [".env", "innocent.txt"],
        "generated": ["node_modules/"],
    }
    if use_git:
        del expected["not_regular"]  # git lists neither fifos nor sockets
    for reason, paths in expected.items():
        assert sorted(result.examples[reason]) == paths, reason
    assert result.skipped == {reason: len(paths) for reason, paths in expected.items()}
    assert result.listed == len(result.candidates) + sum(result.skipped.values())
    link = next(c for c in result.candidates if c.relpath == "via-link.py")
    assert link.link_target == "ignored-target/real.py"


def test_symlinked_directory_is_never_followed(tree: Tree, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    write(outside, {"leak.py": "must not be listed\n"})
    root = tree({"a.py": "a\n"})
    os.symlink(outside, root / "out")
    os.symlink(root, root / "a-loop")
    result = scan_folder(root, use_git=False)
    assert names(result) == {"a.py"}
    assert result.skipped == {"symlink_outside": 1, "symlink_loop": 1}
    scoped = scan_folder(root, only=["out/leak.py", "out"], use_git=False)
    assert names(scoped) == set()


def test_unreadable_directory_is_counted(tree: Tree, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tree({"a.py": "a\n", "locked/b.py": "b\n"})
    real_scandir = os.scandir

    def scandir(path: str) -> object:  # root cannot be denied a directory; fail it here
        if str(path).endswith("locked"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    result = scan_folder(root, use_git=False)
    assert names(result) == {"a.py"}
    assert result.examples["unreadable"] == ["locked/"]


def test_bad_ignore_patterns_and_unreadable_ignore_files_are_survivable(tree: Tree) -> None:
    root = tree({"a.py": "a\n", "b.txt": "b\n", ".gitignore": "!\n***/[\n*.txt\n"})
    (root / "sub" / ".oropendolaignore").mkdir(parents=True)  # cannot be read as a file
    result = scan_folder(root, use_git=False)
    assert "a.py" in names(result)
    assert "b.txt" not in names(result)


def test_non_utf8_file_name(tree: Tree) -> None:
    root = tree({"a.py": "a\n"})
    with open(os.path.join(os.fsencode(root), b"bad-\xff.py"), "wb") as handle:
        handle.write(b"x = 1\n")
    result = scan_folder(root, use_git=False)
    assert names(result) == {"a.py"}
    assert result.skipped == {"invalid_name": 1}
