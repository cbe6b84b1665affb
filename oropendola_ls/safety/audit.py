"""The command audit log: one JSON object per line, appended, never rewritten.

Every command the server is asked to run is recorded when it is proposed, approved, denied,
blocked and executed, with the gate's decision and reasons, who proposed it (``user``, ``ai`` or
``backend``) and the exit code. Secret-looking values in commands are masked before writing.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from oropendola_ls.backend.redact import redact_patterns

log = logging.getLogger(__name__)

Event = Literal["proposed", "approved", "denied", "blocked", "executed", "cancelled"]
Source = Literal["user", "ai", "backend"]


class AuditLog:
    def __init__(self, path: Path | None = None, *,
                 on_failure: Callable[[str], None] | None = None) -> None:
        """``on_failure`` is told, once until a write works again, that the log cannot be
        written: the message names the file and what to do."""
        if path is None:
            from oropendola_ls.paths import state_dir

            path = state_dir() / "audit.jsonl"
        self.path = path
        self.on_failure = on_failure
        self.failing = False

    def record(self, event: Event, command: str, *, source: Source, **fields: Any) -> None:
        """Append one entry; a log that cannot be written is reported, never fatal."""
        entry = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "event": event,
            "source": source,
            "command": redact_patterns(command),
        }
        entry.update({k: v for k, v in fields.items() if v is not None})
        line = json.dumps(entry, ensure_ascii=False) + "\n"
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            with os.fdopen(fd, "a", encoding="utf-8") as stream:
                stream.write(line)
        except OSError as exc:
            log.warning("cannot write the command audit log %s: %s", self.path, exc)
            if not self.failing and self.on_failure is not None:
                self.on_failure(
                    f"Cannot write the command audit log {self.path} "
                    f"({exc.strerror or type(exc).__name__}): commands still run but are not "
                    f"recorded; free disk space or make {self.path.parent} writable "
                    "(OROPENDOLA_STATE_DIR picks another directory)")
            self.failing = True
        else:
            self.failing = False
