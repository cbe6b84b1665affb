"""One SQLite file of the reference backend: created private, migrated, one transaction a call.

`Store` (accounts, sessions, chat history) and `SearchIndex` (the workspace index) each own a
file, so a long index write never holds up sign-in; both open it the same way.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path


class Database:
    """A connection shared between threads, guarded by a lock; `transaction` is the way in."""

    def __init__(self, path: Path, schema: Iterable[str], version: int, *,
                 rows: bool = False) -> None:
        """Open ``path`` (created 0600), refuse a newer ``version``, apply ``schema``.

        ``schema`` statements run one by one inside a transaction (``executescript`` would
        commit on its own). With ``rows``, queries give `sqlite3.Row` objects.
        """
        self.path = path
        if not path.exists():
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
        self.lock = threading.RLock()
        self.conn = sqlite3.connect(path, timeout=10.0, isolation_level=None,
                                    check_same_thread=False)
        if rows:
            self.conn.row_factory = sqlite3.Row
        self.conn.execute("PRAGMA foreign_keys = ON")
        with self.transaction() as db:
            found = db.execute("PRAGMA user_version").fetchone()[0]
            if found > version:
                raise RuntimeError(f"{path} was written by a newer oropendola-ls (schema {found})")
            for statement in schema:
                db.execute(statement)
            db.execute(f"PRAGMA user_version = {version}")

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        with self.lock:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield self.conn
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            self.conn.execute("COMMIT")

    def close(self) -> None:
        with self.lock:
            self.conn.close()
