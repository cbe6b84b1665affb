"""Sign-in state: the credentials the client presents, and the on-disk session store.

The store is one JSON file (``session.json`` in the user's config directory) holding one entry
per backend, keyed by the normalised base URL. It is the only file a session id, API secret or
access/refresh token is ever written to: it is created with mode 0600 inside a 0700 directory
and replaced atomically, so it is never readable by other users, not even for an instant.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import stat
from pathlib import Path
from typing import Any

import attrs

from oropendola_ls import paths
from oropendola_ls.backend.endpoints import normalize_base_url
from oropendola_ls.private_file import write_private

log = logging.getLogger(__name__)

STORE_FILENAME = "session.json"
STORE_VERSION = 1
FILE_MODE = 0o600
DIR_MODE = 0o700


def _hidden(value: str | None) -> str:
    return "None" if value is None else "'***'"


@attrs.define
class Credentials:
    """What the client presents to the backend. The repr never shows a secret value."""

    user: str | None = None
    """The signed-in user: an email address or a Frappe user id."""
    full_name: str | None = None
    sid: str | None = attrs.field(default=None, repr=_hidden)
    """The Frappe session cookie."""
    api_key: str | None = None
    api_secret: str | None = attrs.field(default=None, repr=_hidden)
    csrf_token: str | None = attrs.field(default=None, repr=_hidden)
    access_token: str | None = attrs.field(default=None, repr=_hidden)
    """The browser sign-in's access token (``X-Access-Token``; ``api_key`` of the agent)."""
    refresh_token: str | None = attrs.field(default=None, repr=_hidden)
    """Trades for a new access token when the backend refuses the current one."""

    @property
    def has_any(self) -> bool:
        """True when there is something to authenticate with: a session id, a key pair or an
        access token."""
        return bool(self.sid) or bool(self.api_key and self.api_secret) or bool(
            self.access_token)

    @property
    def token_only(self) -> bool:
        """True when an access token is the only credential held (browser sign-in)."""
        return bool(self.access_token) and not self.sid and not (
            self.api_key and self.api_secret)

    @property
    def secret_values(self) -> tuple[str, ...]:
        """The secret values held (for `redact` and `RedactingFilter`)."""
        return tuple(s for s in (self.sid, self.api_secret, self.csrf_token, self.access_token,
                                 self.refresh_token) if s)

    def to_json(self) -> dict[str, str]:
        return {k: v for k, v in attrs.asdict(self).items() if isinstance(v, str) and v}

    @classmethod
    def from_json(cls, data: object) -> Credentials | None:
        """Read one store entry; None when it is not an object of string fields."""
        if not isinstance(data, dict):
            return None
        fields = {a.name for a in attrs.fields(cls)}
        values = {k: v for k, v in data.items() if k in fields and isinstance(v, str) and v}
        return cls(**values)


class SessionStoreError(OSError):
    """The session store cannot be written (disk full, read-only, not a directory); the message
    names the file and what to do."""


class SessionStore:
    """The on-disk session store: one file, sessions keyed by normalised base URL.

    A corrupt or unreadable file never raises: reads log a warning naming the file and behave as
    if it were empty, and the next `save` replaces it. Base URLs are normalised with
    `normalize_base_url`, so an invalid URL raises `BackendConfigError`.
    """

    def __init__(self, path: Path | None = None) -> None:
        self.path = path if path is not None else paths.config_dir() / STORE_FILENAME

    def __repr__(self) -> str:
        return f"SessionStore({str(self.path)!r})"

    def load(self, base_url: str) -> Credentials | None:
        return self._read().get(normalize_base_url(base_url))

    def entries(self) -> dict[str, Credentials]:
        return self._read()

    def save(self, base_url: str, credentials: Credentials) -> None:
        sessions = self._read(quiet=True)
        sessions[normalize_base_url(base_url)] = credentials
        self._write(sessions)

    def delete(self, base_url: str) -> bool:
        """Forget the session for ``base_url``; True when there was one."""
        sessions = self._read(quiet=True)
        if sessions.pop(normalize_base_url(base_url), None) is None:
            return False
        self._write(sessions)
        return True

    # -- reading -----------------------------------------------------------------------------

    def _read(self, *, quiet: bool = False) -> dict[str, Credentials]:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return {}
        except OSError as exc:
            if not quiet:
                log.warning("Cannot read the session store %s (%s); ignoring it", self.path,
                            exc.strerror or type(exc).__name__)
            return {}
        self._tighten_mode()
        try:
            data: Any = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError):
            data = None
        sessions = data.get("sessions") if isinstance(data, dict) else None
        if not isinstance(sessions, dict):
            if not quiet:
                log.warning("The session store %s is corrupt; ignoring it (it is replaced at the "
                            "next sign-in)", self.path)
            return {}
        result: dict[str, Credentials] = {}
        for url, entry in sessions.items():
            credentials = Credentials.from_json(entry)
            try:
                key = normalize_base_url(url) if isinstance(url, str) else None
            except ValueError:
                key = None
            if credentials is None or key is None:
                if not quiet:
                    log.warning("Skipping a malformed entry in the session store %s", self.path)
                continue
            result[key] = credentials
        return result

    def _tighten_mode(self) -> None:
        """Repair a store file that someone made readable by others."""
        if os.name != "posix":
            return
        try:
            mode = stat.S_IMODE(self.path.stat().st_mode)
            if mode & 0o077:
                os.chmod(self.path, FILE_MODE)
                log.warning("The session store %s was readable by others; mode set to 0600",
                            self.path)
        except OSError:
            pass

    # -- writing -----------------------------------------------------------------------------

    def _ensure_dir(self) -> None:
        directory = self.path.parent
        missing: list[Path] = []
        probe = directory
        while not probe.exists():
            missing.append(probe)
            if probe.parent == probe:
                break
            probe = probe.parent
        directory.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
        # mkdir's mode is filtered by the umask and applies to the leaf only: set it explicitly on
        # every directory created here, and on the default config directory even if it existed.
        owned = set(missing)
        if directory == paths.config_dir():
            owned.add(directory)
        if os.name == "posix":
            for created in owned:
                with contextlib.suppress(OSError):
                    os.chmod(created, DIR_MODE)

    def _write(self, sessions: dict[str, Credentials]) -> None:
        """Replace the store atomically; `SessionStoreError` when it cannot be (the file that
        was there is left as it was)."""
        payload = json.dumps(
            {"version": STORE_VERSION,
             "sessions": {url: c.to_json() for url, c in sorted(sessions.items())}},
            indent=2,
        ).encode()
        try:
            self._ensure_dir()
            write_private(self.path, payload, FILE_MODE)
        except OSError as exc:
            raise SessionStoreError(
                f"Cannot save the session store {self.path} "
                f"({exc.strerror or type(exc).__name__}): free disk space or make "
                f"{self.path.parent} writable (OROPENDOLA_CONFIG_DIR picks another directory)"
            ) from exc
        if os.name == "posix":
            with contextlib.suppress(OSError):
                dir_fd = os.open(self.path.parent, os.O_RDONLY)
                try:
                    os.fsync(dir_fd)
                finally:
                    os.close(dir_fd)
