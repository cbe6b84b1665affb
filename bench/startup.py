"""Spawn → `initialize` answer time and idle RSS: oropendola-ls against a bare pygls server.

    python bench/startup.py [--runs 9] [--idle 1.5] [--profiles 3]

Both servers are started the same way (the same Python, stdio); each run sends `initialize`,
times the answer, sends `initialized`, idles, then reads VmRSS from /proc. The two servers
alternate run by run, so load changes hit both alike; each ratio is oropendola-ls / bare of the
same run. oropendola-ls points at a closed loopback port, so no network is involved. The
project's modules are byte-compiled first, as a pip-installed wheel's are (an editable install
under PYTHONDONTWRITEBYTECODE would recompile them each start).

The profile (``--profiles`` runs of each, interleaved): ``python -X importtime`` of both servers
started with stdin at EOF (they import everything, then exit): total import time, and the
cumulative time of ``lsprotocol.types`` (the LSP type definitions pygls itself imports), which
bare pygls pays too. Target (from the startup issue): within 1.2x of bare pygls in both time and
RSS.
"""

from __future__ import annotations

import argparse
import compileall
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import Figure, print_figures, rss_kib
from lsp_wire import frame, read_message  # bench/ is on sys.path when run as a script

HERE = Path(__file__).resolve().parent
TARGET_RATIO = 1.2
SERVERS = {
    "bare pygls": [sys.executable, str(HERE / "bare_server.py")],
    "oropendola-ls": [sys.executable, "-m", "oropendola_ls"],
}


def one_run(command: list[str], env: dict[str, str], idle: float) -> tuple[float, int]:
    """(seconds from spawn to the initialize answer, idle VmRSS in KiB)."""
    init = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "processId": os.getpid(), "rootUri": None, "capabilities": {},
        "initializationOptions": {"serverUrl": "http://127.0.0.1:9/"},
    }}
    started = time.perf_counter()
    proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, env=env)
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(frame(init))
    proc.stdin.flush()
    while read_message(proc.stdout).get("id") != 1:
        pass
    elapsed = time.perf_counter() - started
    proc.stdin.write(frame({"jsonrpc": "2.0", "method": "initialized", "params": {}}))
    proc.stdin.flush()
    time.sleep(idle)
    rss = rss_kib(proc.pid)
    proc.stdin.write(frame({"jsonrpc": "2.0", "id": 2, "method": "shutdown"}))
    proc.stdin.write(frame({"jsonrpc": "2.0", "method": "exit"}))
    proc.stdin.close()
    proc.wait(10)
    return elapsed, rss


def import_profile(command: list[str], env: dict[str, str]) -> dict[str, tuple[int, int, int]]:
    """``-X importtime`` of ``command`` started with stdin at EOF: module → (self µs,
    cumulative µs, nesting depth)."""
    proc = subprocess.run([command[0], "-X", "importtime", *command[1:]], stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, env=env, timeout=60)
    modules: dict[str, tuple[int, int, int]] = {}
    for line in proc.stderr.splitlines():
        if not line.startswith("import time:") or "[us]" in line:
            continue
        own, cumulative, name = line[len("import time:"):].split("|")
        depth = (len(name) - len(name.lstrip())) // 2
        modules.setdefault(name.strip(), (int(own), int(cumulative), depth))
    if not modules:
        raise RuntimeError(f"no -X importtime output from {command}")
    return modules


def measure(runs: int = 9, idle: float = 1.5, profiles: int = 3) -> list[Figure]:
    """Startup figures; see the module docstring."""
    compileall.compile_dir(HERE.parent / "oropendola_ls", quiet=1)
    compileall.compile_file(HERE / "bare_server.py", quiet=1)
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, OROPENDOLA_CONFIG_DIR=tmp, OROPENDOLA_DATA_DIR=tmp,
                   OROPENDOLA_STATE_DIR=tmp, OROPENDOLA_CACHE_DIR=tmp)
        results: dict[str, list[tuple[float, int]]] = {name: [] for name in SERVERS}
        one_run(SERVERS["oropendola-ls"], env, 0.1)  # warm the file cache for both
        one_run(SERVERS["bare pygls"], env, 0.1)
        for run in range(runs):  # interleaved, so load changes hit both alike
            order = list(SERVERS.items())
            if run % 2:
                order.reverse()
            for name, command in order:
                results[name].append(one_run(command, env, idle))
        imports: dict[str, list[dict[str, tuple[int, int, int]]]] = {n: [] for n in SERVERS}
        for _ in range(profiles):
            for name, command in SERVERS.items():
                imports[name].append(import_profile(command, env))
    bare, ours = results["bare pygls"], results["oropendola-ls"]
    figures = [
        Figure("startup: spawn → initialize, bare pygls", "ms", [t * 1000 for t, _ in bare],
               digits=1),
        Figure("startup: spawn → initialize, oropendola-ls", "ms", [t * 1000 for t, _ in ours],
               digits=1, ratio=[o[0] / b[0] for o, b in zip(ours, bare, strict=True)],
               baseline="bare", target=("<=", TARGET_RATIO), target_on_ratio=True),
        Figure("startup: idle RSS, bare pygls", "MiB", [r / 1024 for _, r in bare], digits=1),
        Figure("startup: idle RSS, oropendola-ls", "MiB", [r / 1024 for _, r in ours], digits=1,
               ratio=[o[1] / b[1] for o, b in zip(ours, bare, strict=True)], baseline="bare",
               target=("<=", TARGET_RATIO), target_on_ratio=True),
    ]
    if profiles:
        figures += profile_figures(imports["bare pygls"], imports["oropendola-ls"])
    return figures


def profile_figures(bare: list[dict[str, tuple[int, int, int]]],
                    ours: list[dict[str, tuple[int, int, int]]]) -> list[Figure]:
    """Import-time figures: totals, lsprotocol.types, and what only oropendola-ls imports."""
    def total(profile: dict[str, tuple[int, int, int]]) -> float:
        return sum(c for _, c, depth in profile.values() if depth == 0) / 1000

    def types_ms(profile: dict[str, tuple[int, int, int]]) -> float:
        return profile.get("lsprotocol.types", (0, 0, 0))[1] / 1000

    extra: dict[str, list[int]] = {}
    for profile, base in zip(ours, bare, strict=True):
        for name, (own, _, _) in profile.items():
            if name not in base:
                extra.setdefault(name, []).append(own)
    own_extra = sorted(((statistics.median(v) / 1000, n) for n, v in extra.items()),
                       reverse=True)
    extra_total = [sum(own for n, (own, _, _) in p.items() if n not in b) / 1000
                   for p, b in zip(ours, bare, strict=True)]
    top = ", ".join(f"{name} {ms:.0f}" for ms, name in own_extra[:8])
    return [
        Figure("startup profile: imports, bare pygls", "ms", [total(p) for p in bare],
               digits=0, note="-X importtime, sum of top-level cumulative times"),
        Figure("startup profile: imports, oropendola-ls", "ms", [total(p) for p in ours],
               digits=0, ratio=[total(o) / total(b) for o, b in zip(ours, bare, strict=True)],
               baseline="bare"),
        Figure("startup profile: lsprotocol.types, bare pygls", "ms",
               [types_ms(p) for p in bare], digits=0),
        Figure("startup profile: lsprotocol.types, oropendola-ls", "ms",
               [types_ms(p) for p in ours], digits=0),
        Figure("startup profile: modules only oropendola-ls imports", "ms", extra_total,
               digits=0, note=f"their own (self) time; the largest, in ms: {top}"),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--idle", type=float, default=1.5, help="seconds idle before RSS")
    parser.add_argument("--profiles", type=int, default=3, help="-X importtime runs of each")
    args = parser.parse_args(argv)
    print(f"runs: {args.runs} each, interleaved; python {sys.version.split()[0]}")
    print_figures(measure(args.runs, args.idle, args.profiles))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
