"""Where oropendola-ls keeps its files: the user's config, data and state directories.

``OROPENDOLA_CONFIG_DIR``, ``OROPENDOLA_DATA_DIR``, ``OROPENDOLA_STATE_DIR`` and
``OROPENDOLA_CACHE_DIR`` override the platform defaults (tests and portable installs use them).
"""

from __future__ import annotations

import os
from pathlib import Path

APP_NAME = "oropendola-ls"


def config_dir() -> Path:
    override = os.environ.get("OROPENDOLA_CONFIG_DIR")
    if override:
        return Path(override)
    import platformdirs

    return Path(platformdirs.user_config_dir(APP_NAME, appauthor=False))


def data_dir() -> Path:
    override = os.environ.get("OROPENDOLA_DATA_DIR")
    if override:
        return Path(override)
    import platformdirs

    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def state_dir() -> Path:
    """Logs and other state worth keeping but not syncing (the command audit log)."""
    override = os.environ.get("OROPENDOLA_STATE_DIR")
    if override:
        return Path(override)
    import platformdirs

    return Path(platformdirs.user_state_dir(APP_NAME, appauthor=False))


def cache_dir() -> Path:
    """Files that can be rebuilt at a cost (the workspace index manifests)."""
    override = os.environ.get("OROPENDOLA_CACHE_DIR")
    if override:
        return Path(override)
    import platformdirs

    return Path(platformdirs.user_cache_dir(APP_NAME, appauthor=False))
