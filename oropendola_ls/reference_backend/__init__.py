"""The reference backend: a local, Frappe-compatible Oropendola server.

It speaks the wire contract of the real Frappe v15 backend (shared/reference/protocol.md):
``/api/method/<name>`` with Frappe's envelopes, errors, ``sid`` cookie sessions and API-key
auth, the method names of both endpoint profiles, and Socket.IO at ``/socket.io``. Users run it
offline, and the test suites talk to it.

    backend = await start_backend(data_dir=tmp_path)
    backend.store.add_user("jane@example.com", "secret", "Jane Doe")
    ...  # talk to backend.url
    await backend.close()
"""

from oropendola_ls.reference_backend.server import (
    DEFAULT_PROFILES,
    DEFAULT_SESSION_EXPIRY,
    RunningBackend,
    serve,
    start_backend,
)
from oropendola_ls.reference_backend.store import (
    ChatMessage,
    Session,
    Store,
    Usage,
    User,
    validate_email,
)

__all__ = [
    "DEFAULT_PROFILES",
    "DEFAULT_SESSION_EXPIRY",
    "ChatMessage",
    "RunningBackend",
    "Session",
    "Store",
    "Usage",
    "User",
    "serve",
    "start_backend",
    "validate_email",
]
