"""Spawn → `initialize` answer time and idle RSS: oropendola-ls against a bare pygls server.

    python bench/startup.py [--runs 9]

Both servers are started the same way (the same Python, stdio); each run sends `initialize`,
times the answer, sends `initialized`, idles, then reads VmRSS from /proc. Prints the median of
each figure and the ratio oropendola-ls / bare. oropendola-ls points at a closed loopback port,
so no network is involved. The project's modules are byte-compiled first, as a pip-installed
wheel's are (an editable install under PYTHONDONTWRITEBYTECODE would recompile them each start).
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

from lsp_wire import frame, read_message  # bench/ is on sys.path when run as a script

HERE = Path(__file__).resolve().parent


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def one_run(command: list[str], env: dict[str, str], idle: float) -> tuple[float, int]:
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--idle", type=float, default=1.5, help="seconds idle before RSS")
    args = parser.parse_args()
    compileall.compile_dir(HERE.parent / "oropendola_ls", quiet=1)
    compileall.compile_file(HERE / "bare_server.py", quiet=1)
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, OROPENDOLA_CONFIG_DIR=tmp, OROPENDOLA_DATA_DIR=tmp)
        servers = {
            "bare pygls": [sys.executable, str(HERE / "bare_server.py")],
            "oropendola-ls": [sys.executable, "-m", "oropendola_ls"],
        }
        results: dict[str, list[tuple[float, int]]] = {name: [] for name in servers}
        one_run(servers["oropendola-ls"], env, 0.1)  # warm the file cache for both
        one_run(servers["bare pygls"], env, 0.1)
        for _ in range(args.runs):  # interleaved, so load changes hit both alike
            for name, command in servers.items():
                results[name].append(one_run(command, env, args.idle))
    medians = {name: (statistics.median(t for t, _ in runs),
                      statistics.median(r for _, r in runs)) for name, runs in results.items()}
    print(f"runs: {args.runs} each, interleaved; python {sys.version.split()[0]}")
    for name, (seconds, rss) in medians.items():
        print(f"{name:14s}  spawn->initialize {seconds * 1000:7.1f} ms"
              f"   idle RSS {rss / 1024:6.1f} MiB")
    (base_t, base_r), (ours_t, ours_r) = medians["bare pygls"], medians["oropendola-ls"]
    print(f"ratio           spawn->initialize {ours_t / base_t:5.2f}x"
          f"      idle RSS {ours_r / base_r:5.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
