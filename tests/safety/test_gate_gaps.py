"""Known gaps, as a strict-xfail catalog (command-safety.md §4.3).

Each case is something a careful reviewer would block that the gate only confirms today. They
are strict: when a change closes one, the unexpected pass fails the build until the case moves
to a real test. None of these is ever allowed — confirm is the floor — which the last test
checks.
"""

from __future__ import annotations

import pytest

from oropendola_ls.safety import CommandValidator

VALIDATOR = CommandValidator()

GAPS = {
    # Inline interpreters: only literal arguments of spawning calls are read, no data flow.
    "python-variable": "python3 -c \"import os; c='rm -rf /'; os.system(c)\"",
    "perl-variable": "perl -e '$c=\"rm -rf /\"; system($c)'",
    "awk-variable": "awk 'BEGIN { cmd = \"rm -rf /\"; system(cmd) }'",
    # Positional parameters of `sh -c` are not bound to the following words.
    "sh-c-positional": "sh -c '\"$@\"' _ rm -rf /",
    # The filesystem is not modelled: symlinks created in the line are not followed.
    "symlink-to-root": "ln -s / x && rm -rf x/",
    # Build files fed on stdin are not read as code.
    "makefile-on-stdin": "make -f - <<< 'all: ; rm -rf /'",
    # Remote commands are not analysed (even on localhost).
    "ssh-localhost": "ssh localhost 'rm -rf ~'",
}


@pytest.mark.xfail(strict=True, reason="known gap: confirmed, not blocked")
@pytest.mark.parametrize("command", GAPS.values(), ids=GAPS.keys())
def test_known_gap(command: str) -> None:
    assert VALIDATOR.validate(command).decision == "block"


@pytest.mark.parametrize("command", GAPS.values(), ids=GAPS.keys())
def test_known_gaps_are_still_confirmed(command: str) -> None:
    assert VALIDATOR.validate(command).decision == "confirm"
