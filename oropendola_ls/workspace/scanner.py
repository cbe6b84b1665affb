"""List the files of one workspace folder that may be indexed, and say why the others are not.

Listing. Inside a git work tree the list is ``git ls-files -co --exclude-standard`` (tracked
files plus untracked files that are not ignored, as git sees them: nested ``.gitignore`` files,
``.git/info/exclude``, the global excludes file). Directories git reports as such (an
untracked nested repository, a submodule) are walked. When git is missing, fails, times out, or
the folder is not in a work tree, an ``os.scandir`` walk honours every ``.gitignore`` itself
(see `ignore`). In both cases ``.oropendolaignore`` files and the ``exclude`` globs apply on
top, and generated directories and files are dropped (`ignore.GENERATED_DIRS`, ...). A listed
path that is not there any more (deleted from the work tree but still in git's index) is simply
not a candidate; one that disappears after this, before it is read, is counted as ``vanished``
by the reader.

Classification. Each listed path gets a verdict without reading it: a candidate (with its size
and mtime), or a skip reason counted in `ScanResult.skipped`:

``generated``        a generated directory (counted once, its files are not listed) or file
``secret_file``      a file that holds secrets by its name (`secrets.secret_file_kind`)
``binary``           a binary format by its suffix (``.png``, ``.zip``, ...)
``too_large``        larger than ``max_file_size``
``not_regular``      a fifo, socket or device: never opened
``symlink_outside``  a symlink resolving outside the workspace folder
``symlink_loop``     a symlink that cannot be resolved (a cycle), or to a directory that
                     contains it
``symlink_duplicate`` a symlink to a file that is itself a candidate, or to another directory
                     of the workspace: the content is indexed once, under its real path
``unreadable``       ``lstat``/``stat`` fails (a dangling symlink, permissions), an unreadable
                     directory
``invalid_name``     a file name that is not valid UTF-8 (it cannot travel in JSON)

A symlink to a file inside the workspace whose target is not a candidate itself (its target is
ignored, say) is indexed under the link's path, read through the link. Symlinked directories are
never followed, so a walk can neither leave the folder nor loop.
"""

from __future__ import annotations

import errno
import logging
import os
import stat
import subprocess
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

import attrs

from oropendola_ls.secrets import secret_file_kind
from oropendola_ls.workspace import ignore
from oropendola_ls.workspace.ignore import IgnoreLayers

log = logging.getLogger(__name__)

GIT_TIMEOUT = 60.0
MAX_EXAMPLES = 5
DEFAULT_MAX_FILE_SIZE = 1 << 20

# Variables that would point git at another repository than the folder's own.
_GIT_ENV_DROP = (
    "GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES", "GIT_COMMON_DIR", "GIT_NAMESPACE", "GIT_PREFIX",
)


@attrs.define(slots=True)
class Candidate:
    """A file that may be indexed: its path relative to the folder (``/``-separated), the path to
    open, and the size and mtime ``stat`` gave (of the target, for a symlink)."""

    relpath: str
    path: str
    size: int
    mtime_ns: int
    link_target: str | None = None
    """For a symlink: the target's path relative to the folder."""


@attrs.define
class ScanResult:
    root: Path
    mode: str = "walk"
    """``git`` or ``walk``: how the files were listed."""
    candidates: list[Candidate] = attrs.Factory(list)
    skipped: Counter[str] = attrs.Factory(Counter)
    examples: dict[str, list[str]] = attrs.Factory(dict)
    """Up to `MAX_EXAMPLES` paths per skip reason, for logs."""
    listed: int = 0
    """Paths considered: candidates plus skipped."""
    seconds: float = 0.0

    def skip(self, reason: str, relpath: str) -> None:
        self.skipped[reason] += 1
        examples = self.examples.setdefault(reason, [])
        if len(examples) < MAX_EXAMPLES:
            examples.append(relpath)


@attrs.define
class _Rules:
    """The filters that apply whatever the listing: .oropendolaignore files and ``exclude``."""

    oropendola: IgnoreLayers = attrs.Factory(IgnoreLayers)
    exclude: IgnoreLayers = attrs.Factory(IgnoreLayers)
    gitignore: IgnoreLayers | None = None
    """Only for the walk (git applies .gitignore itself)."""

    def dropped(self, relpath: str, is_dir: bool) -> bool:
        """Whether the path is ignored by its own verdict (ancestors are the caller's job)."""
        if self.gitignore is not None and self.gitignore.matches(relpath, is_dir):
            return True
        return self.oropendola.matches(relpath, is_dir) or self.exclude.matches(relpath, is_dir)


def scan_folder(
    root: Path,
    *,
    exclude: Sequence[str] = (),
    max_file_size: int = DEFAULT_MAX_FILE_SIZE,
    only: Iterable[str] | None = None,
    use_git: bool = True,
) -> ScanResult:
    """List and classify the files of ``root`` (see the module docstring).

    ``only`` restricts the scan to these paths (relative, ``/``-separated; a directory means
    everything under it): the paths a file watcher or a save reported. ``use_git=False`` forces
    the walk.
    """
    started = time.perf_counter()
    root = Path(os.path.abspath(root))
    result = ScanResult(root)
    rules = _Rules()
    rules.exclude.add("", ignore.compile_patterns(exclude, "the exclude setting"))
    scope = None if only is None else _normalise_scope(only)
    listing: list[str] | None = None
    if use_git:
        listing = _git_listing(root, scope)
    if listing is not None:
        result.mode = "git"
        for path in scope or ():
            _load_ancestor_rules(root, path, rules, include_self=False)
        listing = _expand_git_listing(root, listing, rules, result)
    else:
        rules.gitignore = IgnoreLayers()
        listing = _walk_listing(root, scope, rules, result)
    directories = _classify(root, listing, max_file_size, result)
    for directory in directories:  # submodules: walked with their own .gitignore files
        inner = attrs.evolve(rules, gitignore=IgnoreLayers())
        more = _walk_listing(root, None, inner, result, start=directory)
        _classify(root, more, max_file_size, result)
    result.candidates.sort(key=lambda c: c.relpath)
    result.seconds = time.perf_counter() - started
    return result


def _normalise_scope(paths: Iterable[str]) -> list[str]:
    scope = []
    for path in paths:
        clean = path.replace("\\", "/").strip("/")
        while clean.startswith("./"):
            clean = clean[2:]
        if clean and clean != "." and ".." not in clean.split("/"):
            scope.append(clean)
    return scope


# -- listing with git ---------------------------------------------------------------------------


def _git_listing(root: Path, scope: list[str] | None) -> list[str] | None:
    """Paths from ``git ls-files`` relative to ``root``, or None when git cannot answer."""
    if scope is not None and not scope:
        return []
    command = ["git", "--literal-pathspecs", "ls-files", "-z", "-c", "-o", "--exclude-standard"]
    stdin = None
    if scope is not None:
        command += ["--pathspec-from-file=-", "--pathspec-file-nul"]
        stdin = b"\0".join(os.fsencode(p) for p in scope)
    env = {k: v for k, v in os.environ.items() if k not in _GIT_ENV_DROP}
    env["GIT_OPTIONAL_LOCKS"] = "0"
    try:
        done = subprocess.run(  # noqa: S603 - fixed argv, no shell
            command, cwd=root, input=stdin, capture_output=True, env=env,
            timeout=GIT_TIMEOUT, check=False,
        )
    except FileNotFoundError:
        log.debug("git is not installed: walking %s", root)
        return None
    except subprocess.TimeoutExpired:
        log.warning("git ls-files took more than %.0f s in %s: walking the folder instead",
                    GIT_TIMEOUT, root)
        return None
    except OSError as exc:
        log.warning("Cannot run git in %s (%s): walking the folder instead", root, exc)
        return None
    if done.returncode != 0:
        first = done.stderr.decode("utf-8", "replace").strip().splitlines()[:1]
        log.debug("git ls-files failed in %s (%s): walking instead", root,
                  first[0] if first else done.returncode)
        return None
    # Unmerged paths come once per stage. surrogateescape keeps undecodable names
    # round-trippable; _classify reports them.
    return [os.fsdecode(p) for p in dict.fromkeys(done.stdout.split(b"\0")) if p]


def _expand_git_listing(root: Path, listing: list[str], rules: _Rules,
                        result: ScanResult) -> list[str]:
    """Apply the generated/.oropendolaignore/exclude filters to git's list; walk directories."""
    for relpath in listing:
        if relpath.rpartition("/")[2] == ignore.OROPENDOLAIGNORE:
            base = relpath.rpartition("/")[0]
            rules.oropendola.load(base, str(root / relpath), relpath)
    if not any(p == ignore.OROPENDOLAIGNORE for p in listing):
        top = root / ignore.OROPENDOLAIGNORE
        if top.is_file():
            rules.oropendola.load("", str(top), ignore.OROPENDOLAIGNORE)
    venvs = {p.rpartition("/")[0] for p in listing
             if p.endswith(ignore.VIRTUALENV_MARKER) and "/" in p
             and p.rpartition("/")[2] == ignore.VIRTUALENV_MARKER}
    generated_dirs: set[str] = set()
    kept: list[str] = []
    dir_ok: dict[str, bool] = {"": True}
    for relpath in listing:
        if relpath.endswith("/"):  # an untracked nested repository: walk it
            directory = relpath.rstrip("/")
            if _dir_allowed(directory, dir_ok, venvs, generated_dirs, rules, result):
                inner = attrs.evolve(rules, gitignore=IgnoreLayers())
                kept.extend(_walk_listing(root, None, inner, result, start=directory))
            continue
        parent = relpath.rpartition("/")[0]
        if not _dir_allowed(parent, dir_ok, venvs, generated_dirs, rules, result):
            continue
        if rules.dropped(relpath, False):
            continue
        kept.append(relpath)
    return kept


def _dir_allowed(directory: str, dir_ok: dict[str, bool], venvs: set[str],
                 generated_dirs: set[str], rules: _Rules, result: ScanResult) -> bool:
    """Whether files under ``directory`` may be listed; generated directories counted once."""
    known = dir_ok.get(directory)
    if known is not None:
        return known
    parent, _, name = directory.rpartition("/")
    allowed = _dir_allowed(parent, dir_ok, venvs, generated_dirs, rules, result)
    if allowed:
        if rules.dropped(directory, True):
            allowed = False
        elif ignore.generated_dir(name) or directory in venvs:
            allowed = False
            if directory not in generated_dirs:
                generated_dirs.add(directory)
                result.listed += 1
                result.skip("generated", directory + "/")
    dir_ok[directory] = allowed
    return allowed


# -- listing by walking -------------------------------------------------------------------------


def _walk_listing(root: Path, scope: list[str] | None, rules: _Rules, result: ScanResult,
                  start: str = "") -> list[str]:
    """Paths under ``root/start`` (or under each ``scope`` path) that no rule drops."""
    if scope is not None:
        listing: list[str] = []
        for path in scope:
            listing.extend(_walk_scoped(root, path, rules, result))
        return list(dict.fromkeys(listing))
    listing = []
    stack = [start]
    while stack:
        directory = stack.pop()
        _walk_one(root, directory, rules, result, stack, listing)
    return listing


def _walk_one(root: Path, directory: str, rules: _Rules, result: ScanResult,
              stack: list[str], listing: list[str]) -> None:
    absolute = os.path.join(root, directory) if directory else str(root)
    try:
        with os.scandir(absolute) as iterator:
            entries = list(iterator)
    except FileNotFoundError:
        return
    except OSError as exc:
        log.debug("Cannot list %s: %s", absolute, exc)
        result.listed += 1
        result.skip("unreadable", directory + "/")
        return
    names = {entry.name for entry in entries}
    if directory and ignore.VIRTUALENV_MARKER in names:
        result.listed += 1
        result.skip("generated", directory + "/")
        return
    prefix = directory + "/" if directory else ""
    if rules.gitignore is not None and ignore.GITIGNORE in names:
        rules.gitignore.load(directory, os.path.join(absolute, ignore.GITIGNORE),
                             prefix + ignore.GITIGNORE)
    if ignore.OROPENDOLAIGNORE in names:
        rules.oropendola.load(directory, os.path.join(absolute, ignore.OROPENDOLAIGNORE),
                              prefix + ignore.OROPENDOLAIGNORE)
    subdirs: list[str] = []
    for entry in entries:
        name = entry.name
        if name == ".git":
            continue
        relpath = prefix + name
        try:
            is_dir = entry.is_dir(follow_symlinks=False)
        except OSError:
            is_dir = False
        if is_dir:
            if rules.dropped(relpath, True):
                continue  # ignored: not counted, as git does not list it either
            if ignore.generated_dir(name):
                result.listed += 1
                result.skip("generated", relpath + "/")
            else:
                subdirs.append(relpath)
        elif not rules.dropped(relpath, False):
            listing.append(relpath)
    stack.extend(sorted(subdirs, reverse=True))


def _load_ancestor_rules(root: Path, relpath: str, rules: _Rules, *, include_self: bool) -> None:
    """Load the ignore files of every directory from the root down to ``relpath``."""
    parts = relpath.split("/")
    upto = len(parts) if include_self else len(parts) - 1
    for depth in range(upto + 1):
        directory = "/".join(parts[:depth])
        absolute = os.path.join(root, directory) if directory else str(root)
        prefix = directory + "/" if directory else ""
        if rules.gitignore is not None:
            path = os.path.join(absolute, ignore.GITIGNORE)
            if os.path.isfile(path):
                rules.gitignore.load(directory, path, prefix + ignore.GITIGNORE)
        path = os.path.join(absolute, ignore.OROPENDOLAIGNORE)
        if os.path.isfile(path):
            rules.oropendola.load(directory, path, prefix + ignore.OROPENDOLAIGNORE)


def _walk_scoped(root: Path, relpath: str, rules: _Rules, result: ScanResult) -> list[str]:
    """The listing for one path a watcher reported: a file, a directory, or nothing."""
    _load_ancestor_rules(root, relpath, rules, include_self=False)
    parts = relpath.split("/")
    for depth in range(1, len(parts)):
        directory = "/".join(parts[:depth])
        if ignore.generated_dir(parts[depth - 1]) or rules.dropped(directory, True):
            return []
        absolute = os.path.join(root, directory)
        if os.path.islink(absolute) or os.path.exists(
            os.path.join(absolute, ignore.VIRTUALENV_MARKER)
        ):
            return []  # never reach a file through a symlinked directory
    absolute = os.path.join(root, relpath)
    try:
        mode = os.lstat(absolute).st_mode
    except OSError:
        return []
    if stat.S_ISDIR(mode):
        if ignore.generated_dir(parts[-1]) or rules.dropped(relpath, True):
            return []
        listing: list[str] = []
        stack = [relpath]
        while stack:
            _walk_one(root, stack.pop(), rules, result, stack, listing)
        return listing
    if rules.dropped(relpath, False):
        return []
    return [relpath]


# -- classification -----------------------------------------------------------------------------


def _classify(root: Path, listing: list[str], max_file_size: int,
              result: ScanResult) -> list[str]:
    """Classify each listed path into ``result``; returns the listed paths that are directories
    (git lists a submodule as one path)."""
    directories: list[str] = []
    real_root = os.path.realpath(root)
    real_prefix = real_root.rstrip(os.sep) + os.sep
    links: list[Candidate] = []
    prefix = os.path.join(root, "")
    for relpath in listing:
        result.listed += 1
        name = relpath.rpartition("/")[2]
        try:
            relpath.encode("utf-8")
        except UnicodeEncodeError:
            result.skip("invalid_name", relpath.encode("utf-8", "backslashreplace").decode())
            continue
        if ignore.generated_file(name):
            result.skip("generated", relpath)
            continue
        if secret_file_kind(relpath) is not None:
            result.skip("secret_file", relpath)
            continue
        if ignore.binary_by_name(name):
            result.skip("binary", relpath)
            continue
        path = prefix + relpath
        try:
            info = os.lstat(path)
        except FileNotFoundError:
            # Deleted from the work tree but still in git's index, or gone since the listing:
            # not there, so not a candidate (and removed from the index if it was in it).
            result.listed -= 1
            continue
        except OSError:
            result.skip("unreadable", relpath)
            continue
        mode = info.st_mode
        target: str | None = None
        if stat.S_ISLNK(mode):
            verdict = _follow_link(path, relpath, real_root, real_prefix)
            if isinstance(verdict, str):
                result.skip(verdict, relpath)
                continue
            info, target = verdict
            mode = info.st_mode
            if secret_file_kind(target) is not None:
                result.skip("secret_file", relpath)
                continue
        elif stat.S_ISDIR(mode):
            result.listed -= 1
            directories.append(relpath)
            continue
        if not stat.S_ISREG(mode):
            result.skip("not_regular", relpath)
            continue
        if info.st_size > max_file_size:
            result.skip("too_large", relpath)
            continue
        candidate = Candidate(relpath, path, info.st_size, info.st_mtime_ns, target)
        if target is None:
            result.candidates.append(candidate)
        else:
            links.append(candidate)
    if links:
        own = {c.relpath for c in result.candidates}
        for link in links:
            if link.link_target in own:
                result.skip("symlink_duplicate", link.relpath)
            else:
                result.candidates.append(link)
    return directories


def _follow_link(path: str, relpath: str, real_root: str,
                 real_prefix: str) -> str | tuple[os.stat_result, str]:
    """A skip reason for the symlink at ``path``, or its target's stat and relative path."""
    try:
        info = os.stat(path)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "symlink_loop"
        return "unreadable"  # dangling (ENOENT) or not permitted
    real = os.path.realpath(path)
    if real != real_root and not real.startswith(real_prefix):
        return "symlink_outside"
    target = real[len(real_prefix):].replace(os.sep, "/") if real != real_root else ""
    if stat.S_ISDIR(info.st_mode):
        link_dir = relpath.rpartition("/")[0]
        if target == "" or link_dir == target or link_dir.startswith(target + "/"):
            return "symlink_loop"
        return "symlink_duplicate"
    return info, target
