"""Command-gate throughput and latency: the tree-sitter gate against the seed's regex approach.

    python bench/gate.py [--n 20000] [--seed 20260101]

The labelled corpus (tests/safety/corpus/*.tsv) is repeated and shuffled with a fixed seed to
`--n` commands. Each command is decided by `CommandValidator(GatePolicy()).validate` and, in the
same run, by `RegexBaseline` below (a substring denylist, a `startswith` allowlist and a few regex
risk tiers, the way the seed's TypeScript gate works). Prints decisions per second, median / p95 /
max microseconds per command, the median over the first call for each distinct command, and how
each scores on the corpus labels. "gate" runs with the validator's per-text verdict cache off (the
analysis itself); "gate (cached)" is the validator as the server uses it, where a repeated corpus
mostly measures cache hits. Target: "gate" median <= 50 µs.

Nothing is executed and nothing touches the network: commands are only classified.
"""

from __future__ import annotations

import argparse
import gc
import random
import re
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "tests" / "safety" / "corpus"
TARGET_MEDIAN_US = 50.0
ORDER = {"allow": 0, "confirm": 1, "block": 2}

sys.path.insert(0, str(ROOT))


def load_corpus() -> list[tuple[str, str]]:
    """(expected, command) pairs; the format is described in tests/safety/corpus/README.md."""
    cases = []
    for path in sorted(CORPUS.glob("*.tsv")):
        for line in path.read_bytes().decode("utf-8").split("\n"):
            if not line or line.startswith("#"):
                continue
            expected, command, _note = line.split("\t")
            if command.startswith("esc:"):
                raw = command[4:]
                command = raw.encode("latin-1", "backslashreplace").decode("unicode_escape")
            cases.append((expected, command))
    return cases


class RegexBaseline:
    """The seed's approach: substring denylist, then `startswith` allowlist, then regex tiers."""

    DENYLIST = (
        "rm -rf /", "rm -rf ~", "rm -rf *", "mkfs", "dd", ":(){", "chmod 777", "chmod -R 777",
        "> /dev/sd", "shutdown", "reboot", "halt", "poweroff", "format c:", "fdisk", "sudo su",
        "kill -9 -1",
    )
    ALLOWLIST = (
        "ls", "pwd", "cat", "echo", "head", "tail", "wc", "grep", "rg", "find", "which",
        "git status", "git log", "git diff", "git show", "git branch", "npm test", "npm run",
        "node --version", "npm --version", "python --version", "python3 --version",
    )
    TIERS = (
        ("high", re.compile(
            r"\b(sudo|su|doas|chmod|chown|dd|mkfs|curl|wget|nc|ssh|scp|eval)\b|\|\s*(ba)?sh\b")),
        ("medium", re.compile(
            r"\b(rm|mv|cp|kill|pkill|docker|make|npm (install|i|ci)|pip install|yarn|pnpm"
            r"|git (push|commit|reset|checkout|rebase|merge|clean)|sed -i)\b|>")),
    )

    def validate(self, command: str) -> str:
        text = command.strip()
        if any(bad in text for bad in self.DENYLIST):
            return "block"
        if text.startswith(self.ALLOWLIST):
            return "allow"
        for level, pattern in self.TIERS:
            if pattern.search(text):
                return "block" if level == "high" and "rm -rf" in text else "confirm"
        return "allow"


def make_gate(*, cached: bool) -> Callable[[str], str]:
    """The gate's decide function. The validator keeps verdicts per command text (its
    `cache_size`); a repeated corpus would then time dictionary hits, so the headline figure
    switches that cache off and times the analysis itself."""
    from oropendola_ls.safety import CommandValidator, GatePolicy

    validator = CommandValidator(GatePolicy())
    if not cached:
        if not hasattr(validator, "cache_size"):
            raise SystemExit("cannot switch the gate's verdict cache off (no cache_size)")
        validator.cache_size = 0
    return lambda command: str(validator.validate(command).decision)


def time_calls(decide: Callable[[str], str], commands: list[str]) -> list[float]:
    """Microseconds per call, one timing per command."""
    clock = time.perf_counter_ns
    out = []
    gc.disable()
    try:
        for command in commands:
            start = clock()
            decide(command)
            out.append((clock() - start) / 1000.0)
    finally:
        gc.enable()
    return out


def score(decide: Callable[[str], str], cases: list[tuple[str, str]]) -> dict[str, int]:
    counts = {"ok": 0, "hard": 0, "soft": 0, "over": 0}
    for expected, command in cases:
        got = decide(command)
        if got == expected:
            counts["ok"] += 1
        elif got == "allow":
            counts["hard"] += 1
        elif ORDER[got] < ORDER[expected]:
            counts["soft"] += 1
        else:
            counts["over"] += 1
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=20_000, help="commands per contestant")
    parser.add_argument("--seed", type=int, default=20260101, help="shuffle seed")
    args = parser.parse_args(argv)

    cases = load_corpus()
    distinct = [command for _, command in cases]
    batch = (distinct * (args.n // len(distinct) + 1))[: args.n]
    random.Random(args.seed).shuffle(batch)

    gate_started = time.perf_counter()
    gate = make_gate(cached=False)
    setup_ms = (time.perf_counter() - gate_started) * 1000
    contestants: list[tuple[str, Callable[[str], str]]] = [
        ("gate", gate),
        ("gate (cached)", make_gate(cached=True)),
        ("regex-baseline", RegexBaseline().validate),
    ]

    print(f"corpus: {len(cases)} distinct commands; batch {len(batch)} (seed {args.seed});"
          f" gate construction {setup_ms:.1f} ms\n")
    header = (f"{'contestant':<16}{'decisions/s':>13}{'median µs':>11}{'p95 µs':>10}"
              f"{'max µs':>10}{'first-call median µs':>22}")
    print(header)
    print("-" * len(header))
    results = {}
    for name, decide in contestants:
        first = time_calls(decide, distinct)          # first call per distinct command
        times = time_calls(decide, batch)
        total_s = sum(times) / 1e6
        median = statistics.median(times)
        p95 = statistics.quantiles(times, n=20)[-1]
        results[name] = median
        print(f"{name:<16}{len(times) / total_s:>13,.0f}{median:>11.1f}{p95:>10.1f}"
              f"{max(times):>10.1f}{statistics.median(first):>22.1f}")

    print()
    print(f"{'corpus score':<16}{'ok':>6}{'hard':>6}{'soft':>6}{'over':>6}")
    for name, decide in contestants[::2]:      # the cached gate decides the same way
        counts = score(decide, cases)
        print(f"{name:<16}{counts['ok']:>6}{counts['hard']:>6}{counts['soft']:>6}"
              f"{counts['over']:>6}")

    verdict = "meets" if results["gate"] <= TARGET_MEDIAN_US else "MISSES"
    print(f"\ngate median {results['gate']:.1f} µs {verdict} the {TARGET_MEDIAN_US:.0f} µs target;"
          f" {results['gate'] / results['regex-baseline']:.0f}x the regex baseline")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
