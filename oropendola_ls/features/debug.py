"""``oropendola/debugInfo``: what a bug report needs, and what leak tests count.

Open files and sockets come from ``/proc/self/fd`` where it exists (Linux), else they are null.
"""

from __future__ import annotations

import asyncio
import os
import stat
from typing import Any

from oropendola_ls import __version__
from oropendola_ls.server import OropendolaServer

DEBUG_INFO = "oropendola/debugInfo"


def open_descriptors() -> tuple[int, int] | None:
    """(open file descriptors, of which sockets), or None where /proc is not available."""
    fd_dir = "/proc/self/fd"
    try:
        names = os.listdir(fd_dir)
    except OSError:
        return None
    files = sockets = 0
    for name in names:
        try:
            mode = os.stat(os.path.join(fd_dir, name)).st_mode
        except OSError:
            continue  # the listing's own descriptor, or one closed meanwhile
        files += 1
        sockets += stat.S_ISSOCK(mode)
    return files, sockets


def debug_info(ls: OropendolaServer, params: Any) -> dict[str, Any]:
    descriptors = open_descriptors()
    return {
        "pid": os.getpid(),
        "version": __version__,
        "asyncioTasks": len(asyncio.all_tasks()),
        "openFiles": descriptors[0] if descriptors else None,
        "sockets": descriptors[1] if descriptors else None,
        "realtime": ls.realtime.status() if ls.realtime is not None else None,
        "waitingChats": ls.progress_router.active,
        "progressTokens": len(ls.work_done_progress.tokens),
        "client": ls.client_support.client,
        "clientPaths": ls.client_support.paths(),
    }


def register(server: OropendolaServer) -> None:
    server.feature(DEBUG_INFO)(debug_info)
