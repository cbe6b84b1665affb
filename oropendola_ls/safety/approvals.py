""""Always allow" answers: argv prefixes the user approved, kept in the user config directory.

They extend the ``allowedCommands`` setting. Each entry is an exact argv prefix of one simple
command (``npm install``), never a bare program name, and never applies to high-risk commands
(the validator decides that).
"""

from __future__ import annotations

import json
import logging
import os
import shlex
from pathlib import Path

log = logging.getLogger(__name__)


class ApprovalStore:
    def __init__(self, path: Path | None = None) -> None:
        if path is None:
            from oropendola_ls.paths import config_dir

            path = config_dir() / "allowed-commands.json"
        self.path = path

    def load(self) -> tuple[str, ...]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return ()
        except (OSError, ValueError) as exc:
            log.warning("ignoring unreadable %s: %s", self.path, exc)
            return ()
        entries = data.get("allowedCommands") if isinstance(data, dict) else None
        if not isinstance(entries, list):
            return ()
        return tuple(e for e in entries if isinstance(e, str) and e.strip())

    def add(self, prefix: tuple[str, ...]) -> str:
        """Store ``prefix`` (at least two words); returns the entry as written."""
        if len(prefix) < 2:
            raise ValueError("an approval needs a program and at least one argument")
        entry = shlex.join(prefix)
        entries = list(dict.fromkeys((*self.load(), entry)))
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        temporary = self.path.with_suffix(".tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as stream:
            json.dump({"allowedCommands": entries}, stream, indent=2)
        os.replace(temporary, self.path)
        return entry
