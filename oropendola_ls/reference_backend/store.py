"""SQLite persistence for the reference backend: users, sessions, browser sign-in requests and
their tokens, settings and chat history.

Everything lives in ``<data_dir>/backend.sqlite3``, except the workspace code index, which has
a database of its own in the same directory (`Store.search_index`, see `search_index`).
Nothing is cached in memory: another process (a CLI command adding a user or ending sessions)
may change the database while the server runs, so every call reads the current rows. Emails
are stored lower-cased. Access and refresh tokens are stored only as their SHA-256: a token is
made, stored hashed and handed out in the same transaction (`Store.poll_auth_request`).
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from oropendola_ls.reference_backend import security
from oropendola_ls.reference_backend.database import Database
from oropendola_ls.reference_backend.search_index import SearchIndex

DB_FILENAME = "backend.sqlite3"
SCHEMA_VERSION = 1
_REFRESH_EVERY = 600.0  # seconds; Frappe writes a session's last use at most this often
AUTH_REQUEST_RETENTION = 86400.0
"""Seconds an expired sign-in request is kept (answering "expired") before it is deleted;
requests whose tokens were handed out stay, since the tokens live on."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    email TEXT PRIMARY KEY,
    full_name TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    enabled INTEGER NOT NULL DEFAULT 1,
    api_key TEXT UNIQUE,
    api_secret_hash TEXT,
    created TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS sessions (
    sid TEXT PRIMARY KEY,
    user TEXT NOT NULL REFERENCES users(email) ON DELETE CASCADE,
    created REAL NOT NULL,
    last_seen REAL NOT NULL,
    expires_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS sessions_user ON sessions(user);
CREATE TABLE IF NOT EXISTS user_settings (
    user TEXT PRIMARY KEY REFERENCES users(email) ON DELETE CASCADE,
    data TEXT NOT NULL,
    modified TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS chat_history (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    conversation_id TEXT NOT NULL,
    user TEXT NOT NULL REFERENCES users(email) ON DELETE CASCADE,
    role TEXT NOT NULL,
    content TEXT NOT NULL,
    timestamp TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS chat_history_user ON chat_history(user, conversation_id, id);
CREATE TABLE IF NOT EXISTS vscode_auth_requests (
    id TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    user TEXT REFERENCES users(email) ON DELETE CASCADE,
    access_token_hash TEXT UNIQUE,
    refresh_token_hash TEXT UNIQUE,
    created REAL NOT NULL,
    expires_at REAL NOT NULL,
    completed REAL,
    delivered INTEGER NOT NULL DEFAULT 0
);
"""

# Permissive on purpose: offline users need addresses like ``me@localhost``.
_EMAIL_RE = re.compile(r"^[^@\s\"'<>,;:()\[\]\\]+@[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?$")


def validate_email(email: str) -> str:
    """Return ``email`` trimmed and lower-cased, or raise `ValueError` saying what is wrong."""
    if not isinstance(email, str):
        raise ValueError("an email address must be a string")
    value = email.strip().lower()
    if not value:
        raise ValueError("an email address is required")
    if len(value) > 254:
        raise ValueError(f"{email!r} is too long to be an email address")
    if ".." in value or not _EMAIL_RE.match(value):
        raise ValueError(f"{email!r} is not a valid email address (expected name@domain)")
    return value


def _check_password(password: str) -> None:
    if not isinstance(password, str) or not password:
        raise ValueError("a password is required")
    if "\x00" in password:
        raise ValueError("a password must not contain NUL characters")


def frappe_datetime(moment: datetime | None = None) -> str:
    """A UTC timestamp formatted the way Frappe serialises datetimes."""
    return (moment or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M:%S.%f")


@dataclass(frozen=True, slots=True)
class User:
    email: str
    full_name: str
    enabled: bool
    created: str
    api_key: str | None

    @property
    def first_name(self) -> str:
        return self.full_name.split(" ", 1)[0]

    @property
    def last_name(self) -> str:
        parts = self.full_name.split(" ", 1)
        return parts[1] if len(parts) > 1 else ""


@dataclass(frozen=True, slots=True)
class Session:
    sid: str
    user: str
    created: float
    last_seen: float
    expires_at: float


AuthRequestStatus = Literal["Pending", "Completed", "Expired", "Revoked"]
"""The states of the app's ``VS Code Auth Request``."""


@dataclass(frozen=True, slots=True)
class AuthRequest:
    """A browser sign-in request (the app's ``VS Code Auth Request``), without its tokens."""

    id: str
    status: AuthRequestStatus
    user: str | None
    created: float
    expires_at: float
    delivered: bool
    """Whether its tokens were handed out (they are, once, by `Store.poll_auth_request`)."""

    def is_expired(self, now: float | None = None) -> bool:
        return (time.time() if now is None else now) >= self.expires_at


@dataclass(frozen=True, slots=True)
class AuthPoll:
    """What polling a sign-in request found; the tokens only on the one poll that made them."""

    state: Literal["invalid", "pending", "expired", "completed", "used", "revoked"]
    user: str | None = None
    access_token: str | None = None
    refresh_token: str | None = None


@dataclass(frozen=True, slots=True)
class ChatMessage:
    conversation_id: str
    role: str
    content: str
    timestamp: str


@dataclass(frozen=True, slots=True)
class ConversationSummary:
    conversation_id: str
    first_prompt: str
    """The first user message ("" if the conversation has none)."""
    updated: str
    """The newest message's timestamp."""


@dataclass(frozen=True, slots=True)
class Usage:
    total_requests_30_days: int
    total_requests_today: int
    last_used: str | None


class Store:
    """The backend's database. Safe to share between threads; each call is one transaction."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = Path(data_dir)
        if not self.data_dir.exists():
            self.data_dir.mkdir(parents=True, mode=0o700)
            os.chmod(self.data_dir, 0o700)
        self.path = self.data_dir / DB_FILENAME
        self._search_index: SearchIndex | None = None
        self._db = Database(self.path, [st for st in _SCHEMA.split(";") if st.strip()],
                            SCHEMA_VERSION, rows=True)
        self._lock, self._conn, self._transaction = self._db.lock, self._db.conn, \
            self._db.transaction

    def close(self) -> None:
        with self._lock:
            if self._search_index is not None:
                self._search_index.close()
            self._db.close()

    @property
    def search_index(self) -> SearchIndex:
        """The users' workspace code index, opened on first use and closed with the store."""
        with self._lock:
            if self._search_index is None:
                self._search_index = SearchIndex(self.data_dir)
            return self._search_index

    def _query(self, sql: str, args: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._conn.execute(sql, args).fetchall()

    # -- users ---------------------------------------------------------------------------------

    @staticmethod
    def _user(row: sqlite3.Row) -> User:
        return User(
            email=row["email"],
            full_name=row["full_name"],
            enabled=bool(row["enabled"]),
            created=row["created"],
            api_key=row["api_key"],
        )

    def add_user(self, email: str, password: str, full_name: str | None = None) -> User:
        """Create an enabled user; `ValueError` if the email is invalid or already taken."""
        address = validate_email(email)
        _check_password(password)
        name = (full_name or "").strip() or address.split("@", 1)[0]
        password_hash = security.hash_password(password)
        with self._transaction() as db:
            if db.execute("SELECT 1 FROM users WHERE email = ?", (address,)).fetchone():
                raise ValueError(f"a user with email {address} already exists")
            db.execute(
                "INSERT INTO users (email, full_name, password_hash, enabled, created)"
                " VALUES (?, ?, ?, 1, ?)",
                (address, name, password_hash, frappe_datetime()),
            )
        user = self.get_user(address)
        assert user is not None
        return user

    def get_user(self, email: str) -> User | None:
        rows = self._query("SELECT * FROM users WHERE email = ?", (email.strip().lower(),))
        return self._user(rows[0]) if rows else None

    def list_users(self) -> list[User]:
        return [self._user(row) for row in self._query("SELECT * FROM users ORDER BY email")]

    def password_hash(self, email: str) -> str | None:
        rows = self._query(
            "SELECT password_hash FROM users WHERE email = ?", (email.strip().lower(),)
        )
        return str(rows[0]["password_hash"]) if rows else None

    def check_password(self, email: str, password: str) -> bool:
        """Whether ``password`` is the user's (takes as long for an unknown user)."""
        stored = self.password_hash(email)
        ok = security.verify_password(stored or security.DUMMY_PASSWORD_HASH, password)
        return ok and stored is not None

    def set_password(self, email: str, password: str, *, end_sessions: bool = True) -> None:
        """Replace the password (and, by default, end the user's sessions, as Frappe does)."""
        _check_password(password)
        password_hash = security.hash_password(password)
        address = email.strip().lower()
        with self._transaction() as db:
            cursor = db.execute(
                "UPDATE users SET password_hash = ? WHERE email = ?", (password_hash, address)
            )
            if cursor.rowcount == 0:
                raise ValueError(f"no user with email {address}")
            if end_sessions:
                db.execute("DELETE FROM sessions WHERE user = ?", (address,))

    def ensure_user(self, email: str, password: str, full_name: str | None = None) -> User:
        """Create the user, or make sure an existing one has this password (and name, if given)."""
        address = validate_email(email)
        if self.get_user(address) is None:
            try:
                return self.add_user(address, password, full_name)
            except ValueError:
                if self.get_user(address) is None:
                    raise  # a real validation error, not a concurrent creation
        if not self.check_password(address, password):
            self.set_password(address, password)
        if full_name and full_name.strip():
            self.set_full_name(address, full_name)
        user = self.get_user(address)
        assert user is not None
        return user

    def set_full_name(self, email: str, full_name: str) -> None:
        name = full_name.strip()
        if not name:
            raise ValueError("a full name must not be empty")
        with self._transaction() as db:
            cursor = db.execute(
                "UPDATE users SET full_name = ? WHERE email = ?", (name, email.strip().lower())
            )
            if cursor.rowcount == 0:
                raise ValueError(f"no user with email {email.strip().lower()}")

    def set_enabled(self, email: str, enabled: bool) -> None:
        """Enable or disable a user; disabling ends their sessions."""
        address = email.strip().lower()
        with self._transaction() as db:
            cursor = db.execute(
                "UPDATE users SET enabled = ? WHERE email = ?", (int(enabled), address)
            )
            if cursor.rowcount == 0:
                raise ValueError(f"no user with email {address}")
            if not enabled:
                db.execute("DELETE FROM sessions WHERE user = ?", (address,))

    def delete_user(self, email: str) -> bool:
        with self._transaction() as db:
            cursor = db.execute("DELETE FROM users WHERE email = ?", (email.strip().lower(),))
            return cursor.rowcount > 0

    # -- API keys ------------------------------------------------------------------------------

    def generate_api_key(self, email: str) -> tuple[str, str]:
        """Give the user a new API key and secret (replacing any old pair); return both.

        Only a hash of the secret is stored, so this is the one chance to see it.
        """
        address = email.strip().lower()
        secret = security.new_api_secret()
        for _attempt in range(5):
            key = security.new_api_key()
            try:
                with self._transaction() as db:
                    cursor = db.execute(
                        "UPDATE users SET api_key = ?, api_secret_hash = ? WHERE email = ?",
                        (key, security.hash_secret(secret), address),
                    )
                    if cursor.rowcount == 0:
                        raise ValueError(f"no user with email {address}")
                return key, secret
            except sqlite3.IntegrityError:
                continue  # key collision: draw another
        raise RuntimeError("could not generate a unique API key")

    def user_for_api_key(self, api_key: str) -> str | None:
        """The enabled user owning ``api_key``, whatever the secret."""
        rows = self._query(
            "SELECT email FROM users WHERE api_key = ? AND enabled = 1", (api_key,)
        )
        return str(rows[0]["email"]) if rows else None

    def api_key_exists(self, api_key: str) -> bool:
        return bool(self._query("SELECT 1 FROM users WHERE api_key = ?", (api_key,)))

    def user_for_api_credentials(self, api_key: str, api_secret: str) -> str | None:
        """The enabled user whose key and secret these are, or None."""
        rows = self._query(
            "SELECT email, api_secret_hash FROM users WHERE api_key = ? AND enabled = 1",
            (api_key,),
        )
        if not rows or not rows[0]["api_secret_hash"]:
            return None
        if not security.verify_secret(rows[0]["api_secret_hash"], api_secret):
            return None
        return str(rows[0]["email"])

    # -- sessions ------------------------------------------------------------------------------

    @staticmethod
    def _session(row: sqlite3.Row) -> Session:
        return Session(
            sid=row["sid"],
            user=row["user"],
            created=row["created"],
            last_seen=row["last_seen"],
            expires_at=row["expires_at"],
        )

    def create_session(self, email: str, expiry: float) -> Session:
        """Start a session lasting ``expiry`` seconds from its last use."""
        now = time.time()
        sid = security.new_sid()
        address = email.strip().lower()
        with self._transaction() as db:
            db.execute("DELETE FROM sessions WHERE expires_at <= ?", (now,))
            db.execute(
                "INSERT INTO sessions (sid, user, created, last_seen, expires_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (sid, address, now, now, now + expiry),
            )
        return Session(sid, address, now, now, now + expiry)

    def get_session(self, sid: str) -> Session | None:
        """The live session ``sid`` (of an enabled user), without refreshing it."""
        rows = self._query(
            "SELECT s.* FROM sessions s JOIN users u ON u.email = s.user"
            " WHERE s.sid = ? AND s.expires_at > ? AND u.enabled = 1",
            (sid, time.time()),
        )
        return self._session(rows[0]) if rows else None

    def resume_session(self, sid: str, expiry: float) -> Session | None:
        """The live session ``sid``, its expiry moved to ``expiry`` seconds from now; else None.

        An expired session is deleted. Like Frappe, the row is rewritten only when its last use
        is older than a small fraction of ``expiry`` (at most 10 minutes), not on every call.
        """
        now = time.time()
        rows = self._query(
            "SELECT s.*, u.enabled FROM sessions s JOIN users u ON u.email = s.user"
            " WHERE s.sid = ?",
            (sid,),
        )
        if not rows:
            return None
        row = rows[0]
        if row["expires_at"] <= now or not row["enabled"]:
            self.delete_session(sid)
            return None
        if now - row["last_seen"] < min(_REFRESH_EVERY, expiry / 100):
            return self._session(row)
        with self._transaction() as db:
            cursor = db.execute(
                "UPDATE sessions SET last_seen = ?, expires_at = ? WHERE sid = ?",
                (now, now + expiry, sid),
            )
            if cursor.rowcount == 0:  # ended meanwhile by another process
                return None
        return Session(row["sid"], row["user"], row["created"], now, now + expiry)

    def delete_session(self, sid: str) -> bool:
        with self._transaction() as db:
            return db.execute("DELETE FROM sessions WHERE sid = ?", (sid,)).rowcount > 0

    def expire_sessions(self, email: str | None = None) -> int:
        """End every session of ``email`` (of everyone when None); return how many ended."""
        with self._transaction() as db:
            if email is None:
                return db.execute("DELETE FROM sessions").rowcount
            return db.execute(
                "DELETE FROM sessions WHERE user = ?", (email.strip().lower(),)
            ).rowcount

    def list_sessions(self, email: str | None = None) -> list[Session]:
        """Live sessions, oldest first."""
        now = time.time()
        if email is None:
            rows = self._query(
                "SELECT * FROM sessions WHERE expires_at > ? ORDER BY created", (now,)
            )
        else:
            rows = self._query(
                "SELECT * FROM sessions WHERE user = ? AND expires_at > ? ORDER BY created",
                (email.strip().lower(), now),
            )
        return [self._session(row) for row in rows]

    # -- browser sign-in (the app's VS Code Auth Request) ----------------------------------------

    @staticmethod
    def _auth_request(row: sqlite3.Row) -> AuthRequest:
        return AuthRequest(id=row["id"], status=row["status"], user=row["user"],
                           created=row["created"], expires_at=row["expires_at"],
                           delivered=bool(row["delivered"]))

    def create_auth_request(self, lifetime: float) -> AuthRequest:
        """Start a Pending sign-in request that expires ``lifetime`` seconds from now.

        Requests that expired more than `AUTH_REQUEST_RETENTION` seconds ago go, unless their
        tokens were handed out.
        """
        now = time.time()
        with self._transaction() as db:
            db.execute(
                "DELETE FROM vscode_auth_requests WHERE expires_at <= ?"
                " AND NOT (status = 'Completed' AND delivered = 1)",
                (now - AUTH_REQUEST_RETENTION,),
            )
            while True:
                request_id = security.new_auth_request_id()
                if not db.execute("SELECT 1 FROM vscode_auth_requests WHERE id = ?",
                                  (request_id,)).fetchone():
                    break
            db.execute(
                "INSERT INTO vscode_auth_requests (id, status, created, expires_at)"
                " VALUES (?, 'Pending', ?, ?)",
                (request_id, now, now + lifetime),
            )
        return AuthRequest(request_id, "Pending", None, now, now + lifetime, False)

    def get_auth_request(self, request_id: str) -> AuthRequest | None:
        rows = self._query("SELECT * FROM vscode_auth_requests WHERE id = ?", (request_id,))
        return self._auth_request(rows[0]) if rows else None

    def complete_auth_request(
        self, request_id: str, email: str
    ) -> Literal["completed", "invalid", "expired", "used"]:
        """Mark a Pending, unexpired request Completed by ``email``; say what happened.

        ``used``: it was already Completed, Expired or Revoked.
        """
        now = time.time()
        with self._transaction() as db:
            row = db.execute("SELECT * FROM vscode_auth_requests WHERE id = ?",
                             (request_id,)).fetchone()
            if row is None:
                return "invalid"
            if row["expires_at"] <= now:
                return "expired"
            if row["status"] != "Pending":
                return "used"
            db.execute(
                "UPDATE vscode_auth_requests SET status = 'Completed', user = ?, completed = ?"
                " WHERE id = ?",
                (email.strip().lower(), now, request_id),
            )
        return "completed"

    def poll_auth_request(self, request_id: str) -> AuthPoll:
        """What ``check_auth_status`` answers, in one transaction.

        An expired request is ``expired`` whatever its state (a Pending one becomes Expired).
        The first poll of a Completed request makes its access and refresh tokens, stores their
        hashes and returns them; later polls find it ``used``: the raw tokens exist only in
        that one answer.
        """
        now = time.time()
        with self._transaction() as db:
            row = db.execute(
                "SELECT r.*, u.enabled FROM vscode_auth_requests r"
                " LEFT JOIN users u ON u.email = r.user WHERE r.id = ?",
                (request_id,),
            ).fetchone()
            if row is None:
                return AuthPoll("invalid")
            if row["expires_at"] <= now:
                if row["status"] == "Pending":
                    db.execute("UPDATE vscode_auth_requests SET status = 'Expired' WHERE id = ?",
                               (request_id,))
                return AuthPoll("expired", row["user"])
            if row["status"] == "Pending":
                return AuthPoll("pending")
            if row["status"] == "Revoked":
                return AuthPoll("revoked", row["user"])
            if row["status"] != "Completed" or row["delivered"] or not row["enabled"]:
                return AuthPoll("used", row["user"])
            access, refresh = security.new_access_token(), security.new_access_token()
            db.execute(
                "UPDATE vscode_auth_requests SET access_token_hash = ?, refresh_token_hash = ?,"
                " delivered = 1 WHERE id = ?",
                (security.token_hash(access), security.token_hash(refresh), request_id),
            )
        return AuthPoll("completed", row["user"], access, refresh)

    def user_for_access_token(self, token: str) -> str | None:
        """The enabled user of a Completed request whose access token this is, or None.

        Like the app, the advertised 30-day lifetime is not enforced: a token lasts until it is
        refreshed away or revoked.
        """
        if not token:
            return None
        rows = self._query(
            "SELECT r.user FROM vscode_auth_requests r JOIN users u ON u.email = r.user"
            " WHERE r.access_token_hash = ? AND r.status = 'Completed' AND u.enabled = 1",
            (security.token_hash(token),),
        )
        return str(rows[0]["user"]) if rows else None

    def refresh_access_token(self, refresh_token: str) -> tuple[str, str] | None:
        """``(user, new access token)`` for a live refresh token; the old access token dies."""
        if not refresh_token:
            return None
        access = security.new_access_token()
        with self._transaction() as db:
            row = db.execute(
                "SELECT r.id, r.user FROM vscode_auth_requests r JOIN users u ON u.email = r.user"
                " WHERE r.refresh_token_hash = ? AND r.status = 'Completed' AND u.enabled = 1",
                (security.token_hash(refresh_token),),
            ).fetchone()
            if row is None:
                return None
            db.execute("UPDATE vscode_auth_requests SET access_token_hash = ? WHERE id = ?",
                       (security.token_hash(access), row["id"]))
        return str(row["user"]), access

    def revoke_access_token(self, token: str) -> int:
        """Revoke the request holding this access token (and so its refresh token too)."""
        if not token:
            return 0
        with self._transaction() as db:
            return db.execute(
                "UPDATE vscode_auth_requests SET status = 'Revoked'"
                " WHERE access_token_hash = ? AND status != 'Revoked'",
                (security.token_hash(token),),
            ).rowcount

    # -- settings ------------------------------------------------------------------------------

    def get_settings(self, email: str) -> dict[str, Any] | None:
        """The user's stored settings object, or None if never saved."""
        rows = self._query(
            "SELECT data FROM user_settings WHERE user = ?", (email.strip().lower(),)
        )
        if not rows:
            return None
        value = json.loads(rows[0]["data"])
        return value if isinstance(value, dict) else None

    def save_settings(self, email: str, settings: dict[str, Any]) -> None:
        data = json.dumps(settings, ensure_ascii=False, sort_keys=True)
        with self._transaction() as db:
            db.execute(
                "INSERT INTO user_settings (user, data, modified) VALUES (?, ?, ?)"
                " ON CONFLICT(user) DO UPDATE SET data = excluded.data,"
                " modified = excluded.modified",
                (email.strip().lower(), data, frappe_datetime()),
            )

    # -- chat history --------------------------------------------------------------------------

    def add_chat_message(
        self, conversation_id: str, email: str, role: str, content: str
    ) -> ChatMessage:
        stamp = frappe_datetime()
        with self._transaction() as db:
            db.execute(
                "INSERT INTO chat_history (conversation_id, user, role, content, timestamp)"
                " VALUES (?, ?, ?, ?, ?)",
                (conversation_id, email.strip().lower(), role, content, stamp),
            )
        return ChatMessage(conversation_id, role, content, stamp)

    def latest_conversation(self, email: str) -> str | None:
        rows = self._query(
            "SELECT conversation_id FROM chat_history WHERE user = ? ORDER BY id DESC LIMIT 1",
            (email.strip().lower(),),
        )
        return str(rows[0]["conversation_id"]) if rows else None

    def get_chat_history(
        self, email: str, conversation_id: str, limit: int = 50
    ) -> list[ChatMessage]:
        """The last ``limit`` messages of one of the user's conversations, oldest first."""
        rows = self._query(
            "SELECT conversation_id, role, content, timestamp FROM chat_history"
            " WHERE user = ? AND conversation_id = ? ORDER BY id DESC LIMIT ?",
            (email.strip().lower(), conversation_id, max(0, limit)),
        )
        return [
            ChatMessage(r["conversation_id"], r["role"], r["content"], r["timestamp"])
            for r in reversed(rows)
        ]

    def recent_conversations(self, email: str, limit: int = 10) -> list[ConversationSummary]:
        """The user's ``limit`` most recently active conversations, newest first."""
        rows = self._query(
            "SELECT c.conversation_id, MAX(c.id) AS last_id, MAX(c.timestamp) AS updated,"
            " (SELECT f.content FROM chat_history f WHERE f.user = c.user"
            "  AND f.conversation_id = c.conversation_id AND f.role = 'user'"
            "  ORDER BY f.id LIMIT 1) AS first_prompt"
            " FROM chat_history c WHERE c.user = ?"
            " GROUP BY c.conversation_id ORDER BY last_id DESC LIMIT ?",
            (email.strip().lower(), max(0, limit)),
        )
        return [
            ConversationSummary(r["conversation_id"], r["first_prompt"] or "", r["updated"])
            for r in rows
        ]

    def usage(self, email: str) -> Usage:
        """How many prompts the user sent in the last 30 days and today (UTC)."""
        now = datetime.now(UTC)
        month_ago = frappe_datetime(now - timedelta(days=30))
        today = now.strftime("%Y-%m-%d")
        rows = self._query(
            "SELECT"
            " SUM(CASE WHEN timestamp >= ? THEN 1 ELSE 0 END) AS month,"
            " SUM(CASE WHEN timestamp >= ? THEN 1 ELSE 0 END) AS today,"
            " MAX(timestamp) AS last_used"
            " FROM chat_history WHERE user = ? AND role = 'user'",
            (month_ago, today, email.strip().lower()),
        )
        row = rows[0]
        return Usage(int(row["month"] or 0), int(row["today"] or 0), row["last_used"])
