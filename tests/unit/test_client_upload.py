"""BackendClient file uploads (multipart form data) over real loopback HTTP."""

from __future__ import annotations

import email.parser
import email.policy
from typing import TYPE_CHECKING, Any

import pytest

from oropendola_ls.backend.client import Upload
from oropendola_ls.backend.errors import BackendRequestError, BackendUnavailableError
from oropendola_ls.backend.session import Credentials

if TYPE_CHECKING:
    from conftest import FakeFrappe, Hit, MakeClient, StartBackend

UPLOAD = "oropendola.files.upload"
HISTORY = "oropendola.chat.get_history"
SID = "3f1c9a7be0d24c55a1e3c2b9d8f7a6e5b4c3d2e1f0a9b8c7d6e5f4a3"
DATA = b"\x89PNG\r\n\x1a\n\x00\xff binary \r\n--not-a-boundary\r\n"


@pytest.fixture
async def backend(start_backend: StartBackend) -> FakeFrappe:
    return await start_backend()


def parts(hit: Hit) -> dict[str, Any]:
    """The multipart body of ``hit``: field name → text, or (filename, content type, bytes)."""
    content_type = hit.headers["Content-Type"]
    assert content_type.startswith("multipart/form-data; boundary=")
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + hit.body)
    found: dict[str, Any] = {}
    for part in message.iter_parts():
        name = str(part.get_param("name", header="content-disposition"))
        payload = part.get_payload(decode=True)
        assert isinstance(payload, bytes)
        filename = part.get_filename()
        found[name] = (filename, part.get_content_type(), payload) if filename else payload.decode()
    return found


async def test_upload_is_sent_as_multipart(backend: FakeFrappe, make_client: MakeClient) -> None:
    backend.on(UPLOAD, lambda: backend.ok({"success": True, "data": {"size": len(DATA)}}))
    client = make_client(backend.url, credentials=Credentials(sid=SID))
    result = await client.call("files.upload", {
        "file": Upload("pic.png", DATA, "image/png"),
        "conversation_id": "c-1", "tags": ["a", "b"], "public": False, "skip": None,
    })
    assert result == {"success": True, "data": {"size": len(DATA)}}
    hit = backend.last(UPLOAD)
    assert hit.verb == "POST" and hit.headers["Cookie"] == f"sid={SID}"
    assert parts(hit) == {
        "file": ("pic.png", "image/png", DATA),
        "conversation_id": "c-1",  # strings as they are
        "tags": '["a", "b"]',  # anything else JSON-encoded
        "public": "false",
    }


async def test_upload_post_is_not_retried_unless_idempotent(
    backend: FakeFrappe, make_client: MakeClient,
) -> None:
    backend.on(UPLOAD, lambda: backend.error(502, "BadGateway"))
    client = make_client(backend.url, max_retries=3)
    with pytest.raises(BackendUnavailableError):
        await client.call("files.upload", {"file": Upload("a.bin", DATA)})
    assert backend.count(UPLOAD) == 1

    backend.hits.clear()
    backend.on(UPLOAD, lambda: backend.error(502, "BadGateway"), lambda: backend.ok("stored"))
    assert await client.call(
        "files.upload", {"file": Upload("a.bin", DATA)}, idempotent=True) == "stored"
    assert backend.count(UPLOAD) == 2
    for hit in backend.hits:  # each attempt carries the whole file
        assert parts(hit) == {"file": ("a.bin", "application/octet-stream", DATA)}


async def test_upload_to_a_get_endpoint_is_refused_unsent(
    backend: FakeFrappe, make_client: MakeClient,
) -> None:
    client = make_client(backend.url)
    with pytest.raises(BackendRequestError, match="POST endpoint"):
        await client.call("chat.get_history", {"file": Upload("a.txt", b"x")})
    assert backend.count(HISTORY) == 0


def test_upload_repr_hides_the_bytes() -> None:
    upload = Upload("secret.bin", b"s3cr3t" * 100, "application/octet-stream")
    assert "s3cr3t" not in repr(upload) and "<600 bytes>" in repr(upload)
