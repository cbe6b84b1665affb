"""Where oropendola-ls keeps its files: the user's config, data and state directories.

``OROPENDOLA_CONFIG_DIR``, ``OROPENDOLA_DATA_DIR``, ``OROPENDOLA_STATE_DIR`` and
``OROPENDOLA_CACHE_DIR`` override the platform defaults (tests and portable installs use them).
"""

from __future__ import annotations

import os
from pathlib import Path

APP_NAME = "oropendola-ls"


def _user_dir(override_variable: str, kind: str) -> Path:
    """``$override_variable`` if set, else platformdirs' ``user_<kind>_dir`` for the app."""
    override = os.environ.get(override_variable)
    if override:
        return Path(override)
    import platformdirs

    return Path(getattr(platformdirs, f"user_{kind}_dir")(APP_NAME, appauthor=False))


def config_dir() -> Path:
    return _user_dir("OROPENDOLA_CONFIG_DIR", "config")


def data_dir() -> Path:
    return _user_dir("OROPENDOLA_DATA_DIR", "data")


def state_dir() -> Path:
    """Logs and other state worth keeping but not syncing (the command audit log)."""
    return _user_dir("OROPENDOLA_STATE_DIR", "state")


def cache_dir() -> Path:
    """Files that can be rebuilt at a cost (the workspace index manifests)."""
    return _user_dir("OROPENDOLA_CACHE_DIR", "cache")
