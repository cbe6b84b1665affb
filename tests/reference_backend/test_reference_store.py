"""The SQLite store on its own: users, passwords, API keys, sessions and the data directory."""

from __future__ import annotations

import stat
import time
from pathlib import Path

import pytest

from oropendola_ls.reference_backend import Store, security, validate_email
from oropendola_ls.reference_backend.store import DB_FILENAME


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "data")


def test_data_dir_and_database_are_private(tmp_path: Path) -> None:
    store = Store(tmp_path / "nested" / "data")
    try:
        assert stat.S_IMODE((tmp_path / "nested" / "data").stat().st_mode) == 0o700
        assert store.path == tmp_path / "nested" / "data" / DB_FILENAME
        assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    finally:
        store.close()


@pytest.mark.parametrize(
    ("raw", "normalised"),
    [("Jane@Example.COM", "jane@example.com"), ("  me@localhost ", "me@localhost")],
)
def test_validate_email_normalises(raw: str, normalised: str) -> None:
    assert validate_email(raw) == normalised


@pytest.mark.parametrize("bad", ["", "jane", "jane@", "@example.com", "ja ne@x.com", "a@b..c"])
def test_validate_email_rejects(bad: str) -> None:
    with pytest.raises(ValueError):
        validate_email(bad)


def test_add_user_defaults_and_duplicates(store: Store) -> None:
    user = store.add_user("Jane@Example.com", "pw-one")
    assert user.email == "jane@example.com"
    assert user.full_name == "jane" and user.enabled and user.api_key is None
    with pytest.raises(ValueError, match="already exists"):
        store.add_user("JANE@example.com", "pw-two", "Jane")
    with pytest.raises(ValueError, match="password"):
        store.add_user("new@example.com", "")
    assert [u.email for u in store.list_users()] == ["jane@example.com"]


def test_passwords_are_salted_scrypt_hashes(store: Store) -> None:
    store.add_user("a@example.com", "same password")
    store.add_user("b@example.com", "same password")
    first, second = store.password_hash("a@example.com"), store.password_hash("b@example.com")
    assert first and second and first != second  # a random salt each
    assert first.startswith("$scrypt$ln=")
    assert store.check_password("a@example.com", "same password")
    assert not store.check_password("a@example.com", "Same password")
    assert not store.check_password("nobody@example.com", "same password")
    # The production cost is the real one (tests lower it to stay fast).
    assert security.DUMMY_PASSWORD_HASH.startswith("$scrypt$ln=14,r=8,p=1$")


def test_ensure_user_creates_then_resets_password(store: Store) -> None:
    store.ensure_user("jane@example.com", "first", "Jane Doe")
    kept = store.create_session("jane@example.com", 60)
    store.ensure_user("jane@example.com", "first", None)
    assert store.get_session(kept.sid) is not None  # same password: sessions kept
    user = store.ensure_user("jane@example.com", "second", "Jane Q. Doe")
    assert user.full_name == "Jane Q. Doe"
    assert store.check_password("jane@example.com", "second")
    assert not store.check_password("jane@example.com", "first")
    assert store.get_session(kept.sid) is None  # a new password ends sessions


def test_set_password_of_unknown_user_fails(store: Store) -> None:
    with pytest.raises(ValueError, match="no user"):
        store.set_password("ghost@example.com", "pw")


def test_api_keys_store_only_a_secret_hash(store: Store) -> None:
    store.add_user("jane@example.com", "pw")
    key, secret = store.generate_api_key("jane@example.com")
    assert store.user_for_api_credentials(key, secret) == "jane@example.com"
    assert store.user_for_api_credentials(key, secret + "x") is None
    assert secret.encode() not in store.path.read_bytes()
    new_key, new_secret = store.generate_api_key("jane@example.com")
    assert store.user_for_api_credentials(key, secret) is None  # replaced
    assert store.user_for_api_credentials(new_key, new_secret) == "jane@example.com"
    store.set_enabled("jane@example.com", False)
    assert store.user_for_api_credentials(new_key, new_secret) is None


def test_sessions_expire_and_can_be_ended(store: Store) -> None:
    store.add_user("jane@example.com", "pw")
    store.add_user("omar@example.com", "pw")
    short = store.create_session("jane@example.com", 0.05)
    jane = store.create_session("jane@example.com", 60)
    omar = store.create_session("omar@example.com", 60)
    time.sleep(0.1)
    assert store.resume_session(short.sid, 60) is None
    assert store.resume_session(jane.sid, 60) is not None
    assert store.expire_sessions("JANE@example.com") == 1
    assert store.get_session(jane.sid) is None
    assert store.get_session(omar.sid) is not None
    assert store.expire_sessions() == 1
    assert store.list_sessions() == []


def test_disabling_a_user_ends_their_sessions(store: Store) -> None:
    store.add_user("jane@example.com", "pw")
    session = store.create_session("jane@example.com", 60)
    store.set_enabled("jane@example.com", False)
    assert store.resume_session(session.sid, 60) is None
