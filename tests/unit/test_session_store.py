"""SessionStore (the 0600 session file) and Credentials."""

from __future__ import annotations

import json
import logging
import os
import stat
from pathlib import Path

import pytest

from oropendola_ls.backend.endpoints import BackendConfigError
from oropendola_ls.backend.redact import RedactingFilter, redact
from oropendola_ls.backend.session import Credentials, SessionStore

SID = "a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0c1d2e3f4a5b6c7d8"
SECRET = "api-secret-7f3e9b2c"
CSRF = "csrf-token-5d1a"

posix_only = pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    return tmp_path / "config" / "oropendola-ls" / "session.json"


def test_round_trip(store_path: Path) -> None:
    store = SessionStore(store_path)
    credentials = Credentials(user="jane@example.com", full_name="Jane Doe", sid=SID,
                              api_key="key", api_secret=SECRET, csrf_token=CSRF)
    assert store.load("https://oropendola.ai") is None
    store.save("https://oropendola.ai", credentials)
    assert SessionStore(store_path).load("https://oropendola.ai/") == credentials
    assert SessionStore(store_path).load("HTTPS://Oropendola.AI") == credentials
    data = json.loads(store_path.read_text())
    assert data["version"] == 1
    assert list(data["sessions"]) == ["https://oropendola.ai/"]


def test_none_fields_are_not_written(store_path: Path) -> None:
    store = SessionStore(store_path)
    store.save("http://127.0.0.1:8000", Credentials(user="u", sid=SID))
    entry = json.loads(store_path.read_text())["sessions"]["http://127.0.0.1:8000/"]
    assert entry == {"user": "u", "sid": SID}


@posix_only
def test_file_0600_and_directory_0700(store_path: Path) -> None:
    old_umask = os.umask(0o022)
    try:
        SessionStore(store_path).save("https://oropendola.ai", Credentials(sid=SID))
    finally:
        os.umask(old_umask)
    assert _mode(store_path) == 0o600
    assert _mode(store_path.parent) == 0o700
    assert _mode(store_path.parent.parent) == 0o700  # created here too
    # A save that replaces the file keeps the mode and leaves no temporary file behind.
    SessionStore(store_path).save("https://other.example.com", Credentials(sid="x" * 10))
    assert _mode(store_path) == 0o600
    assert sorted(p.name for p in store_path.parent.iterdir()) == ["session.json"]


@posix_only
def test_file_never_readable_by_others_even_with_open_umask(store_path: Path) -> None:
    old_umask = os.umask(0)
    try:
        SessionStore(store_path).save("https://oropendola.ai", Credentials(sid=SID))
    finally:
        os.umask(old_umask)
    assert _mode(store_path) == 0o600
    assert _mode(store_path.parent) == 0o700


@posix_only
def test_existing_unrelated_directory_is_left_alone(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    os.chmod(shared, 0o755)
    SessionStore(shared / "session.json").save("https://oropendola.ai", Credentials(sid=SID))
    assert _mode(shared) == 0o755
    assert _mode(shared / "session.json") == 0o600


@posix_only
def test_loose_file_mode_is_repaired(store_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    SessionStore(store_path).save("https://oropendola.ai", Credentials(sid=SID))
    os.chmod(store_path, 0o644)
    with caplog.at_level(logging.WARNING):
        assert SessionStore(store_path).load("https://oropendola.ai") == Credentials(sid=SID)
    assert _mode(store_path) == 0o600
    assert any("readable by others" in r.getMessage() for r in caplog.records)


def test_default_path_is_in_config_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OROPENDOLA_CONFIG_DIR", str(tmp_path / "cfg"))
    store = SessionStore()
    assert store.path == tmp_path / "cfg" / "session.json"
    store.save("https://oropendola.ai", Credentials(sid=SID))
    assert store.path.exists()
    if os.name == "posix":
        assert _mode(tmp_path / "cfg") == 0o700


@pytest.mark.parametrize(
    "content",
    [b"{not json", b"\xff\xfe\x00garbage", b"[]", b'{"sessions": []}', b'"text"', b""],
)
def test_corrupt_file(store_path: Path, content: bytes, caplog: pytest.LogCaptureFixture) -> None:
    store_path.parent.mkdir(parents=True)
    store_path.write_bytes(content)
    store = SessionStore(store_path)
    with caplog.at_level(logging.WARNING):
        assert store.load("https://oropendola.ai") is None
        assert store.entries() == {}
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings and all(str(store_path) in w for w in warnings)
    # save replaces the corrupt file
    store.save("https://oropendola.ai", Credentials(sid=SID))
    assert store.load("https://oropendola.ai") == Credentials(sid=SID)


def test_corrupt_file_warning_does_not_show_content(
    store_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store_path.parent.mkdir(parents=True)
    store_path.write_text('{"sessions": {"https://oropendola.ai/": {"sid": "' + SID + '"')
    with caplog.at_level(logging.DEBUG):
        assert SessionStore(store_path).load("https://oropendola.ai") is None
    assert caplog.records
    assert all(SID not in r.getMessage() for r in caplog.records)


def test_malformed_entries_are_skipped(store_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    store_path.parent.mkdir(parents=True)
    store_path.write_text(json.dumps({"version": 1, "sessions": {
        "https://good.example.com/": {"sid": SID, "user": "u", "unknown": "x", "api_key": 5},
        "https://bad.example.com/": "not an object",
        "http://not-loopback.example.com/": {"sid": SID},
    }}))
    with caplog.at_level(logging.WARNING):
        entries = SessionStore(store_path).entries()
    assert entries == {"https://good.example.com/": Credentials(user="u", sid=SID)}
    assert len([r for r in caplog.records if "Skipping" in r.getMessage()]) == 2


@posix_only
def test_unreadable_file(store_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    store_path.mkdir(parents=True)  # a directory where the file should be: reading fails
    with caplog.at_level(logging.WARNING):
        assert SessionStore(store_path).load("https://oropendola.ai") is None
    assert any(str(store_path) in r.getMessage() for r in caplog.records)


def test_delete(store_path: Path) -> None:
    store = SessionStore(store_path)
    assert store.delete("https://oropendola.ai") is False  # no file
    store.save("https://oropendola.ai", Credentials(sid=SID))
    store.save("http://localhost:8000", Credentials(sid="other-sid"))
    assert store.delete("https://OROPENDOLA.ai/") is True
    assert store.delete("https://oropendola.ai") is False
    assert store.load("https://oropendola.ai") is None
    assert store.load("http://localhost:8000") == Credentials(sid="other-sid")
    assert SID not in store_path.read_text()


def test_delete_on_corrupt_file(store_path: Path) -> None:
    store_path.parent.mkdir(parents=True)
    store_path.write_text("{oops")
    assert SessionStore(store_path).delete("https://oropendola.ai") is False


def test_several_base_urls(store_path: Path) -> None:
    store = SessionStore(store_path)
    urls = ["https://oropendola.ai", "https://staging.oropendola.ai/x", "http://127.0.0.1:8000"]
    for index, url in enumerate(urls):
        store.save(url, Credentials(user=f"user{index}", sid=f"sid-number-{index}"))
    store.save("https://oropendola.ai/", Credentials(user="user0", sid="replaced-sid"))
    entries = SessionStore(store_path).entries()
    assert entries == {
        "https://oropendola.ai/": Credentials(user="user0", sid="replaced-sid"),
        "https://staging.oropendola.ai/x/": Credentials(user="user1", sid="sid-number-1"),
        "http://127.0.0.1:8000/": Credentials(user="user2", sid="sid-number-2"),
    }


def test_bad_base_url(store_path: Path) -> None:
    with pytest.raises(BackendConfigError):
        SessionStore(store_path).save("http://example.com", Credentials(sid=SID))
    assert not store_path.exists()


def test_repr_hides_secrets(store_path: Path) -> None:
    credentials = Credentials(user="jane@example.com", sid=SID, api_key="key-id",
                              api_secret=SECRET, csrf_token=CSRF)
    text = repr(credentials)
    assert SID not in text and SECRET not in text and CSRF not in text
    assert "jane@example.com" in text and "sid='***'" in text
    assert "csrf_token=None" in repr(Credentials(sid=SID))
    assert SID not in str(credentials)
    store = SessionStore(store_path)
    store.save("https://oropendola.ai", credentials)
    assert SID not in repr(store) and SID not in repr(store.entries())


def test_has_any_and_secret_values() -> None:
    assert not Credentials().has_any
    assert not Credentials(user="u", full_name="U").has_any
    assert not Credentials(api_key="k").has_any
    assert not Credentials(api_secret="s").has_any
    assert Credentials(sid=SID).has_any
    assert Credentials(api_key="k", api_secret="s").has_any
    assert set(Credentials(sid=SID, api_secret=SECRET, csrf_token=CSRF).secret_values) == {
        SID, SECRET, CSRF
    }


# -- redact -----------------------------------------------------------------------------------


def test_redact() -> None:
    text = f"cookie sid={SID}; secret={SECRET}; short=abc; user=jane"
    assert redact(text, [SID, SECRET, None, "", "abc"]) == (
        "cookie sid=***; secret=***; short=abc; user=jane"
    )
    assert redact("a%2Fb%3Dc%21 and a/b=c!", ["a/b=c!"]) == "*** and ***"
    assert redact("prefix-longer-secret", ["longer-secret", "prefix-longer-secret"]) == "***"
    assert redact("nothing here", []) == "nothing here"


def test_redacting_filter(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("test.redact")
    flt = RedactingFilter()
    logger.addFilter(flt)
    try:
        with caplog.at_level(logging.DEBUG, logger="test.redact"):
            logger.info("before %s", SID)
            flt.add(SID)
            logger.info("session %s for %s", SID, "jane")
            logger.debug("headers [(b'Set-Cookie', b'sid=%s; HttpOnly'), (b'Content-Type', "
                         "b'application/json')]", "other-unknown-sid")
            try:
                raise ValueError(f"bad {SID}")
            except ValueError:
                logger.exception("failed")
            flt.discard(SID)
            logger.info("after %s", SID)
    finally:
        logger.removeFilter(flt)
    messages = [r.getMessage() for r in caplog.records]
    assert messages[0] == f"before {SID}"  # not known yet
    assert messages[1] == "session *** for jane"
    assert "other-unknown-sid" not in messages[2] and "application/json" in messages[2]
    assert SID not in (caplog.records[3].exc_text or "") and "ValueError" in caplog.text
    assert SID not in caplog.records[3].getMessage()
    assert messages[4] == f"after {SID}"


def test_mask_sensitive_headers() -> None:
    from oropendola_ls.backend.redact import mask_sensitive_headers

    line = ("receive_response_headers.complete return_value=(b'HTTP/1.1', 200, b'OK', "
            "[(b'Content-Type', b'application/json'), (b'Set-Cookie', b'sid=abc123; Path=/'), "
            "(b'set-cookie', b\"user_id=a%40b; Path=/\")])")
    masked = mask_sensitive_headers(line)
    assert "abc123" not in masked and "a%40b" not in masked
    assert "(b'Content-Type', b'application/json')" in masked
    assert masked.count("***") == 2
    url = "GET http://h/api/method/x?pwd=hunter22&user=jane&api_key=k1k2k3 HTTP/1.1"
    assert mask_sensitive_headers(url) == (
        "GET http://h/api/method/x?pwd=***&user=jane&api_key=*** HTTP/1.1"
    )
