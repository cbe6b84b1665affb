"""Completing a browser sign-in the way a person does: open the page, fill in the form, submit.

Only what a browser would see is used: the sign-in page's HTML form (its action, its hidden
fields), then a normal form POST that follows the redirects to the final page.
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path
from urllib.parse import urljoin

import httpx

_FORM = re.compile(r"<form\b[^>]*>.*?</form>", re.S | re.I)
_ACTION = re.compile(r"""\baction\s*=\s*["']([^"']*)["']""", re.I)
_INPUT = re.compile(r"<input\b[^>]*>", re.I)
_ATTR = re.compile(r"""\b(name|value|type)\s*=\s*["']([^"']*)["']""", re.I)


def _password_form(page: str) -> tuple[str, dict[str, str]]:
    """The action and hidden fields of the form that asks for a password."""
    for form in _FORM.findall(page):
        fields: dict[str, str] = {}
        has_password = False
        for tag in _INPUT.findall(form):
            attrs = {k.lower(): html.unescape(v) for k, v in _ATTR.findall(tag)}
            if attrs.get("type", "").lower() == "password":
                has_password = True
            if attrs.get("type", "").lower() == "hidden" and "name" in attrs:
                fields[attrs["name"]] = attrs.get("value", "")
        action = _ACTION.search(form)
        if has_password and action is not None:
            return html.unescape(action.group(1)), fields
    raise AssertionError(f"no sign-in form with a password field on the page:\n{page[:2000]}")


def complete_sign_in(url: str, email: str, password: str) -> httpx.Response:
    """Open ``url``, fill in the sign-in form with ``email``/``password`` and submit it.

    Returns the page the browser ends on (after the redirects).
    """
    with httpx.Client(follow_redirects=True, timeout=30) as browser:
        page = browser.get(url, headers={"Accept": "text/html"})
        assert page.status_code == 200, page.text[:500]
        action, fields = _password_form(page.text)
        fields.update({"usr": email, "pwd": password})
        return browser.post(urljoin(str(page.url), action), data=fields,
                            headers={"Accept": "text/html"})


def stored_entry(config_dir: Path, backend_url: str) -> dict[str, str]:
    """The session store's entry for ``backend_url``."""
    sessions = json.loads((config_dir / "session.json").read_text())["sessions"]
    entry: dict[str, str] = sessions[backend_url]
    return entry


URL_PATTERN = re.compile(r"https?://\S+/vscode-login\?\S+")
"""The sign-in page's URL inside a message."""


def url_in(text: str) -> str | None:
    found = URL_PATTERN.search(text)
    return found.group(0).rstrip(".,)") if found else None
