"""Which paths of a workspace are never indexed: ignore files, the exclude setting, generated code.

Three independent filters decide whether a listed path is a candidate at all; a path is dropped
when any of them drops it:

* ``.gitignore`` files (only when the folder is not a git work tree: git applies them itself,
  along with ``.git/info/exclude`` and the user's global excludes);
* ``.oropendolaignore`` files: the same syntax and layering as ``.gitignore``, applied on top
  of git's decision. A ``!pattern`` in them re-includes only what an earlier
  ``.oropendolaignore`` pattern excluded, never a file git ignores;
* the ``exclude`` globs (the ``indexExclude`` setting), with the same gitwildmatch semantics,
  relative to the workspace folder (``**/*.log``, ``docs/``, ``/build``).

Layering follows git: a pattern in a deeper ignore file overrides the shallower ones; within one
file the last matching pattern wins; and a file inside an excluded directory stays excluded
whatever later patterns say (git never looks inside an excluded directory). Patterns are matched
with pathspec's gitwildmatch implementation, relative to the directory holding the ignore file.

Generated code is recognised by name (see `GENERATED_DIRS` and `GENERATED_FILE_NAMES`): build
outputs, dependency trees, caches and lock files are machine-written, large, and of little use
as context. Lock files count as generated: the dependency manifests (``package.json``,
``pyproject.toml``, ...) say what matters at a fraction of the size. A directory holding a
``pyvenv.cfg`` is a virtualenv whatever its name.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import pathspec

log = logging.getLogger(__name__)

GITIGNORE = ".gitignore"
OROPENDOLAIGNORE = ".oropendolaignore"

GENERATED_DIRS = frozenset({
    ".git", ".hg", ".svn", "node_modules", "bower_components", "jspm_packages",
    "__pycache__", ".venv", "venv", ".tox", ".nox", ".mypy_cache", ".ruff_cache",
    ".pytest_cache", ".hypothesis", ".eggs", ".ipynb_checkpoints",
    "dist", "build", "target", "out-tsc", ".next", ".nuxt", ".svelte-kit", ".turbo",
    ".parcel-cache", ".gradle", ".terraform", ".serverless", ".dart_tool", ".cargo",
    "vendor", "third_party", "coverage", "htmlcov", ".nyc_output", ".cache",
})
"""Directory names whose whole subtree is generated or third-party code."""

GENERATED_DIR_SUFFIXES = (".egg-info",)
VIRTUALENV_MARKER = "pyvenv.cfg"

GENERATED_FILE_NAMES = frozenset({
    "package-lock.json", "npm-shrinkwrap.json", "yarn.lock", "pnpm-lock.yaml", "bun.lockb",
    "poetry.lock", "pipfile.lock", "pdm.lock", "uv.lock", "cargo.lock", "composer.lock",
    "gemfile.lock", "go.sum", "flake.lock", "packages.lock.json", "podfile.lock",
    "pubspec.lock", "mix.lock", ".ds_store", "thumbs.db",
})
"""File names (compared in lower case) of machine-written files: lock files and OS litter."""

GENERATED_FILE_SUFFIXES = (
    ".min.js", ".min.css", ".map", ".pyc", ".pyo", ".pyd", ".class", ".o", ".obj", ".a",
    ".lib", ".so", ".dylib", ".dll", ".exe", ".wasm", ".tsbuildinfo",
)

BINARY_SUFFIXES = frozenset({
    ".png", ".jpg", ".jpeg", ".gif", ".bmp", ".ico", ".icns", ".webp", ".tif", ".tiff",
    ".psd", ".pdf", ".zip", ".gz", ".tgz", ".bz2", ".xz", ".zst", ".7z", ".rar", ".tar",
    ".jar", ".war", ".whl", ".woff", ".woff2", ".ttf", ".otf", ".eot", ".mp3", ".mp4",
    ".wav", ".ogg", ".flac", ".mov", ".avi", ".mkv", ".webm", ".sqlite", ".sqlite3", ".db",
    ".bin", ".dat", ".pkl", ".npy", ".npz", ".parquet", ".onnx", ".pt", ".h5",
})
"""Suffixes of formats that are binary by definition: skipped as ``binary`` without reading."""


def generated_dir(name: str) -> bool:
    return name in GENERATED_DIRS or name.endswith(GENERATED_DIR_SUFFIXES)


def generated_file(name: str) -> bool:
    lowered = name.lower()
    return lowered in GENERATED_FILE_NAMES or lowered.endswith(GENERATED_FILE_SUFFIXES)


def binary_by_name(name: str) -> bool:
    dot = name.rfind(".")
    return dot > 0 and name[dot:].lower() in BINARY_SUFFIXES


def compile_patterns(lines: Iterable[str], source: str) -> pathspec.GitIgnoreSpec | None:
    """A spec from gitignore-syntax lines; a line pathspec cannot parse is logged and dropped.

    None when no pattern remains (so callers skip the spec entirely).
    """
    kept: list[str] = []
    for number, line in enumerate(lines, 1):
        text = line.rstrip("\r\n")
        if not text.strip() or text.startswith("#"):
            continue
        try:
            pathspec.GitIgnoreSpec.from_lines([text])
        except Exception as exc:  # pathspec raises several types for bad patterns
            log.warning("Ignoring pattern %r (%s line %d): %s", text, source, number, exc)
            continue
        kept.append(text)
    return pathspec.GitIgnoreSpec.from_lines(kept) if kept else None


def read_ignore_file(path: str, source: str) -> pathspec.GitIgnoreSpec | None:
    try:
        with open(path, "rb") as handle:
            raw = handle.read(1 << 20)
    except OSError as exc:
        log.warning("Cannot read %s: %s", source, exc.strerror or type(exc).__name__)
        return None
    return compile_patterns(raw.decode("utf-8", "replace").splitlines(), source)


class IgnoreLayers:
    """Ignore files of one kind, keyed by the directory holding them (``""`` for the root).

    Each file's patterns are kept last first: the first one that matches decides (git's "the
    last matching pattern wins"). Only pattern objects' ``include`` and ``match_file`` are used,
    which pathspec has offered since 0.10.
    """

    def __init__(self) -> None:
        self._specs: dict[str, list[pathspec.Pattern]] = {}

    def __bool__(self) -> bool:
        return bool(self._specs)

    def add(self, base: str, spec: pathspec.GitIgnoreSpec | None) -> None:
        if spec is not None:
            self._specs[base] = [p for p in reversed(spec.patterns) if p.include is not None]

    def load(self, base: str, path: str, source: str) -> None:
        self.add(base, read_ignore_file(path, source))

    def matches(self, relpath: str, is_dir: bool) -> bool:
        """This path's own verdict, ancestors not considered (the callers prune excluded
        directories): the deepest ignore file with a matching pattern decides."""
        if not self._specs:
            return False
        suffix = "/" if is_dir else ""
        base = relpath
        while True:
            cut = base.rfind("/")
            base = base[:cut] if cut >= 0 else ""
            patterns = self._specs.get(base)
            if patterns is not None:
                sub = (relpath[len(base) + 1:] if base else relpath) + suffix
                for pattern in patterns:
                    if pattern.match_file(sub) is not None:
                        return bool(pattern.include)
            if not base:
                return False
