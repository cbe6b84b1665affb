"""Read one candidate file once: check it, hash it, decode it and redact it from the same bytes.

Outcomes beyond the scanner's (see `scanner`): ``binary`` (a NUL byte in the first 8 KiB),
``invalid_utf8`` (not UTF-8, and decoding with replacement would replace 1 % of the characters
or more; below that the text is kept with U+FFFD in place of the bad bytes), ``too_large`` (it
grew past the limit), ``not_regular`` (it became a fifo or socket: it is opened non-blocking,
so a fifo never hangs the reader), ``vanished`` and ``unreadable``.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
from collections import Counter

import attrs

from oropendola_ls.secrets import redact_secrets
from oropendola_ls.workspace.scanner import Candidate

SNIFF_BYTES = 8192
MAX_REPLACEMENT_RATIO = 0.01
_OPEN_FLAGS = (os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
               | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_BINARY", 0))


@attrs.define(slots=True)
class FileContent:
    relpath: str
    size: int
    """The size ``fstat`` gave when the file was opened (what the next scan compares)."""
    mtime_ns: int
    sha256: str
    """Of the bytes read, before any decoding or redaction."""
    text: str
    """The decoded text with secrets redacted: what is sent."""
    redactions: Counter[str]
    encoded_size: int
    """Bytes of ``text`` as UTF-8."""


def read_candidate(candidate: Candidate, max_file_size: int) -> FileContent | str:
    """The file's content, or the reason it is skipped."""
    try:
        fd = os.open(candidate.path, _OPEN_FLAGS)
    except FileNotFoundError:
        return "vanished"
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "symlink_loop"
        if exc.errno in (errno.ENXIO, errno.EOPNOTSUPP):
            return "not_regular"  # a socket
        return "unreadable"
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return "not_regular"
        if info.st_size > max_file_size:
            return "too_large"
        data = _read_all(fd, info.st_size, max_file_size)
    except OSError:
        return "unreadable"
    finally:
        os.close(fd)
    if data is None:
        return "too_large"
    if data.find(b"\0", 0, SNIFF_BYTES) != -1:
        return "binary"
    digest = hashlib.sha256(data).hexdigest()
    try:
        text = data.decode("utf-8")
        exact = True
    except UnicodeDecodeError:
        text = data.decode("utf-8", "replace")
        if text.count("\ufffd") >= max(1.0, len(text) * MAX_REPLACEMENT_RATIO):
            return "invalid_utf8"
        exact = False
    redacted, counts = redact_secrets(text)
    encoded_size = len(data) if exact and redacted is text else len(redacted.encode("utf-8"))
    return FileContent(candidate.relpath, info.st_size, info.st_mtime_ns, digest, redacted,
                       counts, encoded_size)


def _read_all(fd: int, expected: int, limit: int) -> bytes | None:
    """Read to end of file; None once more than ``limit`` bytes arrive.

    A read of a regular file returns less than asked only at end of file, so asking for one
    byte more than ``fstat`` announced settles the common case in one call.
    """
    first = os.read(fd, expected + 1)
    if len(first) <= expected:
        return first
    chunks = [first]
    total = len(first)
    while total <= limit:
        chunk = os.read(fd, min(1 << 20, limit + 1 - total))
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
    if total > limit:
        return None
    return b"".join(chunks)
