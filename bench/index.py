"""Workspace indexing throughput: cold index, no-change re-index, against a git ls-files floor.

    python bench/index.py [--files 10000] [--runs 3] [--seed 7] [--backend] [--keep DIR]

Generates a repository of ``--files`` source files (Python, TypeScript, JavaScript, Go, Rust,
Java, Markdown, JSON, YAML, shell; 1-8 KB each, a few with planted secrets) plus gitignored
``node_modules/``, ``build/`` and ``.venv/`` trees, then ``git init`` + commit. In that tree it
prints:

* floor: ``git ls-files`` plus reading and SHA-256 hashing every listed file, in this process;
* cold: `index_folder` with an empty manifest and a no-op ``send`` (scan, filter, read, hash,
  redact, batch: everything but the backend), files/s;
* cold, backend: the same, sending every batch to the in-process reference backend through
  `BackendClient` (``--backend``; signs in as a fresh local user);
* no change: `index_folder` again with the manifest the cold run left: seconds and files sent.

Each figure is the median of ``--runs`` runs; the file cache is warm (the tree was just
written). Targets: cold >= 5,000 files/s, no change <= 0.5 s with 0 files sent.

`measure(runs, files)` (what ``python -m bench`` calls) runs floor, cold and no change one after
another in each run and returns the figures with their ratios to the floor of the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from common import Figure

ROOT = Path(__file__).resolve().parent.parent

TARGET_COLD_FILES_PER_S = 5000.0
TARGET_NO_CHANGE_S = 0.5

WORDS = ("user", "order", "item", "cache", "price", "index", "node", "token", "queue", "event",
         "config", "batch", "record", "parser", "buffer", "client", "server", "route", "model",
         "value", "result", "handler", "session", "worker", "stream", "filter", "report")


def ident(rng: random.Random, parts: int = 2, camel: bool = False) -> str:
    words = [rng.choice(WORDS) for _ in range(parts)]
    if camel:
        return words[0] + "".join(w.title() for w in words[1:])
    return "_".join(words)


def python_block(rng: random.Random) -> str:
    name, arg = ident(rng, 3), ident(rng, 1)
    return (f"def {name}({arg}, limit: int = {rng.randint(1, 500)}) -> list[str]:\n"
            f'    """Return the {arg} entries that pass the {ident(rng)} check."""\n'
            f"    out = []\n"
            f"    for key, value in sorted({arg}.items()):\n"
            f"        if value and len(out) < limit:\n"
            f'            out.append(f"{{key}}={{value!r}}")\n'
            f"    return out\n\n\n"
            f"class {ident(rng, 2, camel=True).title()}:\n"
            f"    def __init__(self, {arg}):\n"
            f"        self.{arg} = {arg}\n"
            f"        self.count = {rng.randint(0, 99)}\n\n")


def ts_block(rng: random.Random) -> str:
    name = ident(rng, 3, camel=True)
    return (f"export function {name}(input: Record<string, number>, max = {rng.randint(1, 99)})"
            f": string[] {{\n"
            f"  const result: string[] = [];\n"
            f"  for (const [key, value] of Object.entries(input)) {{\n"
            f"    if (value > max) result.push(`${{key}}:${{value}}`);\n"
            f"  }}\n"
            f"  return result; // {ident(rng)} path\n"
            f"}}\n\n"
            f"export interface {name.title()}Options {{ retries: number; label?: string }}\n\n")


def go_block(rng: random.Random) -> str:
    name = ident(rng, 2, camel=True).title()
    return (f"// {name} reports the {ident(rng)} state.\n"
            f"func {name}(items []string, limit int) ([]string, error) {{\n"
            f"\tout := make([]string, 0, len(items))\n"
            f"\tfor i, item := range items {{\n"
            f"\t\tif i >= limit {{\n\t\t\treturn out, fmt.Errorf(\"limit %d\", limit)\n\t\t}}\n"
            f"\t\tout = append(out, strings.TrimSpace(item))\n"
            f"\t}}\n\treturn out, nil\n}}\n\n")


def rust_block(rng: random.Random) -> str:
    name = ident(rng, 3)
    return (f"/// Sum the {ident(rng)} values.\n"
            f"pub fn {name}(values: &[u64], cap: u64) -> u64 {{\n"
            f"    values.iter().copied().filter(|v| *v < cap).sum::<u64>()"
            f" + {rng.randint(0, 9)}\n}}\n\n")


def java_block(rng: random.Random) -> str:
    name = ident(rng, 2, camel=True)
    return (f"    public List<String> {name}(Map<String, Integer> input) {{\n"
            f"        List<String> out = new ArrayList<>();\n"
            f"        for (Map.Entry<String, Integer> e : input.entrySet()) {{\n"
            f"            if (e.getValue() > {rng.randint(1, 50)}) out.add(e.getKey());\n"
            f"        }}\n        return out;\n    }}\n\n")


def markdown_block(rng: random.Random) -> str:
    return (f"## The {ident(rng)} module\n\n"
            f"Call `{ident(rng, 3)}()` to read the {ident(rng)} settings; see "
            f"https://docs.example.com/{ident(rng, 1)} for details. It retries "
            f"{rng.randint(2, 9)} times and then reports the error.\n\n"
            f"```python\nresult = {ident(rng, 3)}(limit={rng.randint(1, 99)})\n```\n\n")


def json_block(rng: random.Random) -> str:
    return (f'  "{ident(rng)}": {{"enabled": true, "retries": {rng.randint(1, 9)}, '
            f'"label": "{ident(rng, 3)}", "tags": ["{ident(rng, 1)}", "{ident(rng, 1)}"]}},\n')


def yaml_block(rng: random.Random) -> str:
    return (f"{ident(rng)}:\n  image: registry.example.com/{ident(rng, 1)}:{rng.randint(1, 9)}\n"
            f"  replicas: {rng.randint(1, 5)}\n  env:\n    LOG_LEVEL: info\n"
            f"    {ident(rng).upper()}: \"{rng.randint(100, 999)}\"\n")


def shell_block(rng: random.Random) -> str:
    return (f'{ident(rng)}() {{\n  local dir="$1"\n  for f in "$dir"/*.{ident(rng, 1)}; do\n'
            f'    echo "processing $f" >&2\n  done\n}}\n\n')


KINDS: tuple[tuple[str, str, Callable[[random.Random], str], str, str], ...] = (
    # (directory, suffix, block, header, footer)
    ("src/py", ".py", python_block, '"""Generated module."""\nimport os\n\n', ""),
    ("web/src", ".ts", ts_block, "import { z } from './z';\n\n", ""),
    ("web/lib", ".js", ts_block, "'use strict';\n\n", ""),
    ("svc", ".go", go_block, "package svc\n\nimport (\n\t\"fmt\"\n\t\"strings\"\n)\n\n", ""),
    ("core/src", ".rs", rust_block, "use std::collections::HashMap;\n\n", ""),
    ("app/src/main/java", ".java", java_block, "package app;\n\npublic class Gen {\n", "}\n"),
    ("docs", ".md", markdown_block, "# Notes\n\n", ""),
    ("config", ".json", json_block, "{\n", '  "end": true\n}\n'),
    ("deploy", ".yaml", yaml_block, "# generated\n", ""),
    ("scripts", ".sh", shell_block, "#!/bin/sh\nset -eu\n\n", ""),
)
WEIGHTS = (30, 20, 10, 8, 6, 8, 8, 4, 3, 3)
PLANTED = ('OPENAI_API_KEY = "sk-bench1234567890abcdefghijklmn"\n',
           'password: "S3cr3t-bench-42"\n',
           "-----BEGIN RSA PRIVATE KEY-----\n" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo0MjQy" * 2
           + "\n-----END RSA PRIVATE KEY-----\n")


def make_file(rng: random.Random, kind: tuple[str, str, Callable[[random.Random], str], str, str],
              target: int) -> str:
    _, _, block, header, footer = kind
    parts = [header]
    size = len(header) + len(footer)
    while size < target:
        text = block(rng)
        parts.append(text)
        size += len(text)
    parts.append(footer)
    return "".join(parts)


def generate(root: Path, count: int, seed: int) -> int:
    """Write the repository; returns the bytes of the indexed files."""
    rng = random.Random(seed)
    total = 0
    for number in range(count):
        kind = rng.choices(KINDS, WEIGHTS)[0]
        directory = root / kind[0] / f"m{number % 97:02d}"
        directory.mkdir(parents=True, exist_ok=True)
        text = make_file(rng, kind, rng.randint(1024, 8192))
        if number % 500 == 7:
            text += PLANTED[number % len(PLANTED)]
        data = text.encode()
        (directory / f"f{number:05d}{kind[1]}").write_bytes(data)
        total += len(data)
    (root / ".gitignore").write_text("node_modules/\nbuild/\n.venv/\n*.log\n")
    for ignored, n in (("node_modules/pkg", 400), ("build/out", 200), (".venv/lib", 100)):
        (root / ignored).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            (root / ignored / f"x{i}.js").write_text(make_file(rng, KINDS[2], 2048))
    (root / "debug.log").write_text("ignored\n" * 100)
    git = ["git", "-c", "user.name=bench", "-c", "user.email=bench@example.com"]
    subprocess.run([*git, "init", "-q"], cwd=root, check=True)
    subprocess.run([*git, "add", "-A"], cwd=root, check=True)
    subprocess.run([*git, "commit", "-q", "-m", "bench"], cwd=root, check=True)
    return total


def floor(root: Path) -> tuple[float, int]:
    """git ls-files + read + sha256 of every listed file: (seconds, files)."""
    started = time.perf_counter()
    out = subprocess.run(["git", "ls-files", "-z"], cwd=root, capture_output=True,
                         check=True).stdout
    count = 0
    for name in out.split(b"\0"):
        if name:
            with open(os.path.join(root, os.fsdecode(name)), "rb") as handle:
                hashlib.sha256(handle.read()).hexdigest()
            count += 1
    return time.perf_counter() - started, count


async def run_index(root: Path, manifest_dir: Path,
                    send: Callable[[dict[str, Any]], Any]) -> tuple[float, Any]:
    from oropendola_ls.workspace import index_folder

    started = time.perf_counter()
    report = await index_folder(root, send=send, manifest_dir=manifest_dir)
    return time.perf_counter() - started, report


async def noop_send(body: dict[str, Any]) -> None:
    return None


async def bench(root: Path, runs: int, with_backend: bool, work: Path) -> int:
    floors = [floor(root) for _ in range(runs)]
    floor_s = statistics.median(s for s, _ in floors)
    floor_n = floors[0][1]

    cold: list[tuple[float, Any]] = []
    for run in range(runs):
        manifest_dir = work / f"cold{run}"
        cold.append(await run_index(root, manifest_dir, noop_send))
    cold_s = statistics.median(s for s, _ in cold)
    report = cold[0][1]
    if report.errors:
        print("errors:", report.errors)
    sent = report.files_sent
    phases = [(r.scan_ms, r.duration_ms) for _, r in cold]
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs; tree: {floor_n:,} tracked "
          f"files, {sum(report.redactions.values())} secrets redacted per cold run\n")
    header = f"{'figure':<34}{'seconds':>9}{'files':>9}{'files/s':>11}"
    print(header)
    print("-" * len(header))
    print(f"{'floor: git ls-files + sha256':<34}{floor_s:>9.3f}{floor_n:>9,}"
          f"{floor_n / floor_s:>11,.0f}")
    print(f"{'cold, no-op send':<34}{cold_s:>9.3f}{sent:>9,}{sent / cold_s:>11,.0f}"
          f"   (scan {statistics.median(p[0] for p in phases):.0f} ms)")

    backend_line = None
    if with_backend:
        backend_s, backend_sent = await cold_with_backend(root, work, runs)
        backend_line = (backend_s, backend_sent)
        print(f"{'cold, reference backend':<34}{backend_s:>9.3f}{backend_sent:>9,}"
              f"{backend_sent / backend_s:>11,.0f}")

    again = []
    for _ in range(runs):
        again.append(await run_index(root, work / "cold0", noop_send))
    again_s = statistics.median(s for s, _ in again)
    again_sent = max(r.files_sent for _, r in again)
    print(f"{'no change, same manifest':<34}{again_s:>9.3f}{again_sent:>9,}"
          f"{'':>11}   (scan {statistics.median(r.scan_ms for _, r in again):.0f} ms)")

    print()
    cold_rate = sent / cold_s
    ok_cold = cold_rate >= TARGET_COLD_FILES_PER_S
    ok_again = again_s <= TARGET_NO_CHANGE_S and again_sent == 0
    print(f"cold {cold_rate:,.0f} files/s {'meets' if ok_cold else 'MISSES'} the "
          f"{TARGET_COLD_FILES_PER_S:,.0f} files/s target ({cold_s / floor_s:.1f}x the floor)")
    print(f"no change {again_s:.3f} s, {again_sent} files sent: "
          f"{'meets' if ok_again else 'MISSES'} the {TARGET_NO_CHANGE_S} s / 0 files target")
    if backend_line is not None:
        print(f"with the reference backend: {backend_line[0] - cold_s:+.3f} s over no-op send")
    return 0 if ok_cold and ok_again else 1


async def cold_with_backend(root: Path, work: Path, runs: int) -> tuple[float, int]:
    from oropendola_ls.backend.client import BackendClient
    from oropendola_ls.backend.endpoints import BackendConfig
    from oropendola_ls.reference_backend.server import start_backend

    backend = await start_backend(data_dir=work / "backend")
    try:
        password = "bench password 42"
        backend.store.ensure_user("bench@example.com", password, "Bench")
        async with BackendClient(BackendConfig.create(backend.url), timeout=120) as client:
            await client.login("bench@example.com", password)

            async def send(body: dict[str, Any]) -> None:
                await client.call("workspace.index", body)

            times = []
            sent = 0
            for run in range(runs):
                seconds, report = await run_index(root, work / f"backend{run}", send)
                if report.errors:
                    print("backend errors:", report.errors)
                times.append(seconds)
                sent = report.files_sent
            return statistics.median(times), sent
    finally:
        await backend.close()


async def _measure(root: Path, work: Path, runs: int) -> list[Figure]:
    floor_s: list[float] = []
    floor_rate: list[float] = []
    cold_rate: list[float] = []
    again_s: list[float] = []
    again_sent = 0
    await run_index(root, work / "warm", noop_send)  # warm-up: imports, the file cache
    for run in range(runs):
        seconds, count = floor(root)
        floor_s.append(seconds)
        floor_rate.append(count / seconds)
        manifest_dir = work / f"cold{run}"
        seconds, report = await run_index(root, manifest_dir, noop_send)
        if report.errors:
            raise RuntimeError(f"indexing errors: {report.errors}")
        if report.files_sent < count:
            raise RuntimeError(f"cold index sent {report.files_sent} of {count} files")
        cold_rate.append(report.files_sent / seconds)
        seconds, report = await run_index(root, manifest_dir, noop_send)
        again_s.append(seconds)
        again_sent = max(again_sent, report.files_sent)
    files = count
    return [
        Figure(f"index: floor, git ls-files + sha256 ({files:,} files)", "files/s", floor_rate,
               digits=0),
        Figure("index: floor, git ls-files + sha256", "s", floor_s, digits=3),
        Figure("index: cold, no-op send", "files/s", cold_rate, digits=0,
               ratio=[c / f for c, f in zip(cold_rate, floor_rate, strict=True)],
               baseline="floor", target=(">=", TARGET_COLD_FILES_PER_S),
               note="scan, filter, read, hash, redact, batch: everything but the backend"),
        Figure("index: no-change re-index", "s", again_s, digits=3,
               ratio=[a / f for a, f in zip(again_s, floor_s, strict=True)], baseline="floor",
               target=("<=", TARGET_NO_CHANGE_S),
               note=f"the cold run's manifest; at most {again_sent} files sent"),
        Figure("index: files sent on no-change re-index", "files", [float(again_sent)],
               digits=0, target=("<=", 0)),
    ]


def measure(runs: int = 3, files: int = 10_000, repo: Path | None = None,
            seed: int = 7) -> list[Figure]:
    """The indexing figures over ``repo`` (generated with ``files`` files when None)."""
    if shutil.which("git") is None:
        raise RuntimeError("git is required")
    with tempfile.TemporaryDirectory(prefix="oropendola-index-bench-") as tmp:
        if repo is None:
            repo = Path(tmp) / "repo"
            repo.mkdir()
            generate(repo, files, seed)
        return asyncio.run(_measure(repo, Path(tmp) / "work", runs))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--backend", action="store_true",
                        help="also send to the in-process reference backend")
    parser.add_argument("--keep", type=Path, help="generate into DIR and keep it")
    args = parser.parse_args(argv)
    if shutil.which("git") is None:
        print("git is required", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="oropendola-index-bench-") as tmp:
        root = args.keep or Path(tmp) / "repo"
        work = Path(tmp) / "work"
        if root.exists() and (root / ".git").exists():
            print(f"reusing {root}")
        else:
            root.mkdir(parents=True, exist_ok=True)
            started = time.perf_counter()
            nbytes = generate(root, args.files, args.seed)
            print(f"generated {args.files:,} files ({nbytes / 1e6:.1f} MB) in "
                  f"{time.perf_counter() - started:.1f} s")
        return asyncio.run(bench(root, args.runs, args.backend, work))


if __name__ == "__main__":
    raise SystemExit(main())
