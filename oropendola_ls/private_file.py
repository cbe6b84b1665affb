"""Writing a file only its owner can read, all at once or not at all."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from secrets import token_hex

PRIVATE_MODE = 0o600


def write_private(path: Path, payload: bytes, mode: int = PRIVATE_MODE) -> None:
    """Replace ``path`` with ``payload`` atomically, with exactly ``mode`` whatever the umask.

    The bytes go to a temporary file beside it (created exclusively, never through a symlink),
    reach the disk, and then take its place; a reader sees the old file or the new one, never
    half of either.
    """
    tmp = path.with_name(f".{path.name}.{token_hex(8)}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(tmp, flags, mode)
    try:
        with os.fdopen(fd, "wb") as handle:
            if os.name == "posix":
                os.fchmod(handle.fileno(), mode)
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
