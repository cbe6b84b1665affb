"""The audit log, "Always allow" approvals, and secret masking in free text."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from oropendola_ls.backend.redact import redact_patterns
from oropendola_ls.safety.approvals import ApprovalStore
from oropendola_ls.safety.audit import AuditLog


def test_audit_log_appends_jsonl_with_secrets_masked(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "state" / "audit.jsonl")
    log.record("proposed", "curl -H 'Authorization: Bearer abcdef0123456789' https://x",
               source="ai", decision="confirm", reasons=["network"])
    log.record("executed", "export API_KEY=sk-live-1234567890 && make", source="user",
               exit_code=0)
    lines = log.path.read_text().splitlines()
    assert len(lines) == 2
    first, second = (json.loads(line) for line in lines)
    assert first["event"] == "proposed" and first["source"] == "ai"
    assert first["decision"] == "confirm" and first["reasons"] == ["network"]
    assert "abcdef0123456789" not in lines[0] and "Bearer ***" in first["command"]
    assert second["exit_code"] == 0 and "sk-live" not in lines[1]
    assert stat.S_IMODE(log.path.stat().st_mode) == 0o600


def test_audit_log_that_cannot_be_written_is_not_fatal(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory")
    AuditLog(tmp_path / "file" / "audit.jsonl").record("proposed", "ls", source="user")


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("mysql --password=hunter2hunter2 db", "hunter2hunter2"),
        ("git clone https://me:tok3nvalue@example.com/r.git", "tok3nvalue"),
        ("echo ghp_0123456789abcdefghij", "ghp_0123456789abcdefghij"),
        ("AWS key AKIAABCDEFGHIJKLMNOP", "AKIAABCDEFGHIJKLMNOP"),
        ("TOKEN: 'abcd1234efgh'", "abcd1234efgh"),
    ],
)
def test_redact_patterns(text: str, secret: str) -> None:
    masked = redact_patterns(text)
    assert secret not in masked and "***" in masked


def test_redact_patterns_leaves_ordinary_commands_alone() -> None:
    for text in ("ls -la", "git log --oneline -5", "npm install left-pad", "grep -r token src"):
        assert redact_patterns(text) == text


def test_approvals_store_argv_prefixes(tmp_path: Path) -> None:
    store = ApprovalStore(tmp_path / "allowed-commands.json")
    assert store.load() == ()
    assert store.add(("npm", "install")) == "npm install"
    assert store.add(("git", "commit", "-m")) == "git commit -m"
    store.add(("npm", "install"))
    assert store.load() == ("npm install", "git commit -m")
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    with pytest.raises(ValueError, match="program and at least one argument"):
        store.add(("rm",))


def test_unreadable_approvals_are_ignored(tmp_path: Path) -> None:
    path = tmp_path / "allowed-commands.json"
    path.write_text("{not json")
    assert ApprovalStore(path).load() == ()
