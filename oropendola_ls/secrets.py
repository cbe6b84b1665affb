"""The one secret filter for text that leaves the machine: workspace indexing and chat context.

Two questions, answered without I/O:

`secret_file_kind`
    Is this file, by its path alone, one that holds secrets (``.env*``, private keys, key
    stores, credential files, ...)? Such files are never sent, whatever ignore files say.
    ``.env.example``, ``.env.sample`` and ``.env.template`` count as secret files too: the
    design's rule is ``.env*``, and an "example" file holding a real key by mistake is common
    enough that a name is no proof. Public keys (``id_rsa.pub``) are not secret.

`redact_secrets`
    Replace secret-looking tokens in text that is sent with ``[REDACTED:<kind>]`` and count
    them by kind. It recognises well-known token shapes (AWS, GitHub, GitLab, Slack, Stripe,
    Google, OpenAI, Anthropic, JWTs), whole PEM private-key blocks, passwords in URLs,
    ``Bearer``/``Basic`` credentials given to ``Authorization``-like names, and assignments
    whose name looks secret (``OPENAI_API_KEY = "..."``, ``password: ...``,
    ``"client_secret": "..."``); for those only the value is replaced.

The filter must be cheap on ordinary code, which is most of what the indexer feeds it: about
fifteen scans of the text at C speed decide what can apply (each token rule sits behind a
literal gate; the assignment rule looks only where a trigger word such as ``token`` or
``password`` is followed by an assignment operator), and text with nothing to redact is
returned as is. It must also leave ordinary code alone: an assignment's value is redacted only
when it looks like data (a quoted literal, or an unquoted config value) and not like code
(``self.token``, ``get_password()``, ``os.environ["X"]``), a placeholder (``changeme``,
``<token>``, ``${VAR}``), prose (it holds spaces), a word or identifier (``"IDENTIFIER"``,
``"GITHUB_TOKEN"``, ``"django.contrib.auth"``), a path, a URL or a number, and only when it is
at least eight characters long. A value made of letters alone is therefore kept, even in
``password = "correcthorse"``: the price of not mangling ``expected_token = "IDENT"``.
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from collections.abc import Callable

REDACTION_VERSION = 1
"""Bump when the rules below redact more: the indexer then sends every file again."""
REDACTED_PREFIX = "[REDACTED:"
MIN_VALUE_LENGTH = 8

# -- files that hold secrets -------------------------------------------------------------------

_SECRET_NAMES: dict[str, str] = {
    "id_rsa": "ssh_private_key",
    "id_dsa": "ssh_private_key",
    "id_ecdsa": "ssh_private_key",
    "id_ed25519": "ssh_private_key",
    "id_ecdsa_sk": "ssh_private_key",
    "id_ed25519_sk": "ssh_private_key",
    "identity": "ssh_private_key",
    ".netrc": "netrc",
    "_netrc": "netrc",
    ".pgpass": "pgpass",
    ".git-credentials": "git_credentials",
    ".my.cnf": "mysql_config",
    ".htpasswd": "htpasswd",
    ".npmrc": "package_token",
    ".pypirc": "package_token",
    ".dockercfg": "docker_config",
    "kubeconfig": "kubeconfig",
    "credentials": "credentials",
    "token.json": "oauth_token",
    "token.pickle": "oauth_token",
}
_SECRET_SUFFIXES: tuple[tuple[str, str], ...] = (
    (".pem", "private_key"),
    (".key", "private_key"),
    (".p8", "private_key"),
    (".ppk", "private_key"),
    (".p12", "keystore"),
    (".pfx", "keystore"),
    (".pkcs12", "keystore"),
    (".jks", "keystore"),
    (".keystore", "keystore"),
    (".kdbx", "keystore"),
    (".keytab", "keystore"),
    (".tfstate", "terraform_state"),
    (".tfstate.backup", "terraform_state"),
    (".tfvars", "terraform_vars"),
    (".env", "dotenv"),
)
_SECRET_PARENTS: dict[tuple[str, str], str] = {
    (".aws", "credentials"): "credentials",
    (".docker", "config.json"): "docker_config",
    (".kube", "config"): "kubeconfig",
    (".gem", "credentials"): "package_token",
}
_SECRET_DIRS: dict[str, str] = {".ssh": "ssh", ".gnupg": "gnupg"}
_SECRETS_CONFIG = re.compile(
    r"(?:.*[._-])?secrets?\.(?:ya?ml|json|toml|ini|conf|cfg|properties|txt|xml)"
)
_CREDENTIALS_FILE = re.compile(r"credentials\..+|.*credentials.*\.json")
_SERVICE_ACCOUNT = re.compile(r".*service[-_]?account.*\.json|client_secrets?.*\.json")


_SUFFIX_ENDINGS = tuple(suffix for suffix, _ in _SECRET_SUFFIXES)
_DIR_MARKERS = tuple((f"/{d}/", kind) for d, kind in _SECRET_DIRS.items())


def secret_file_kind(relpath: str) -> str | None:
    """The kind of secret a file holds, judged by its path (``/``-separated), or None.

    Matching is case-insensitive. See the module docstring for what counts.
    """
    path = relpath.replace("\\", "/").lower().rstrip("/")
    parent, _, name = path.rpartition("/")
    if name.startswith(".env"):
        return "dotenv"
    kind = _SECRET_NAMES.get(name)
    if kind is not None:
        return kind
    if parent:
        kind = _SECRET_PARENTS.get((parent.rpartition("/")[2], name))
        if kind is not None:
            return kind
        if "." in parent and not name.endswith(".pub"):
            wrapped = f"/{parent}/"
            for marker, kind in _DIR_MARKERS:
                if marker in wrapped:
                    return kind
    if name.endswith(_SUFFIX_ENDINGS):
        for suffix, kind in _SECRET_SUFFIXES:
            if name.endswith(suffix) and name != suffix[1:]:
                return kind
    if "secret" in name and _SECRETS_CONFIG.fullmatch(name):
        return "secrets_config"
    if "credentials" in name and _CREDENTIALS_FILE.fullmatch(name):
        return "credentials"
    if (("account" in name or "client_secret" in name)
            and _SERVICE_ACCOUNT.fullmatch(name)):
        return "service_account"
    return None


# -- secret-looking tokens in text -------------------------------------------------------------


def _mark(kind: str) -> str:
    return f"{REDACTED_PREFIX}{kind}]"


def _has_digit_and_letter(token: str) -> bool:
    return any(c.isdigit() for c in token) and any(c.isalpha() for c in token)


# Each rule: (pattern, kind, check). The whole match is replaced unless the character before it
# continues a word (patterns cannot say so themselves: a leading ``\b`` or look-behind turns off
# the regex engine's literal-prefix search and makes the scan thirty times slower) or ``check``
# (if any) refuses it. Rules come in groups behind one gate (a substring, or a regex that starts
# with a literal): a gate costs one scan of the text, about as much as one ``in`` test, so the
# text is scanned once per gate rather than once per token prefix.
_TokenRule = tuple[re.Pattern[str], str, Callable[[str], bool] | None]
_TOKEN_GROUPS: tuple[tuple[str | re.Pattern[str], tuple[_TokenRule, ...]], ...] = (
    ("sk-", (
        (re.compile(r"sk-ant-[A-Za-z0-9_\-]{20,}"), "anthropic_key", None),
        (re.compile(r"sk-(?!ant-)(?:proj-|svcacct-|admin-)?[A-Za-z0-9_\-]{20,}"),
         "openai_key", _has_digit_and_letter),
    )),
    (re.compile(r"A(?:KIA|SIA|Iza)"), (
        (re.compile(r"A(?:KIA|SIA)[A-Z0-9]{16}\b"), "aws_access_key_id", None),
        (re.compile(r"AIza[0-9A-Za-z_\-]{30,}"), "google_api_key", None),
    )),
    (re.compile(r"g(?:h[pousr]_|ithub_pat_|lpat-)"), (
        (re.compile(r"gh[pousr]_[A-Za-z0-9]{20,255}\b"), "github_token", None),
        (re.compile(r"github_pat_[A-Za-z0-9_]{20,255}"), "github_token", None),
        (re.compile(r"glpat-[A-Za-z0-9_\-]{20,}"), "gitlab_token", None),
    )),
    ("xox", ((re.compile(r"xox[abprs]-[A-Za-z0-9\-]{10,}"), "slack_token", None),)),
    (re.compile(r"k_(?:live|test)_"), (
        (re.compile(r"sk_(?:live|test)_[A-Za-z0-9]{16,}"), "stripe_key", None),
        (re.compile(r"rk_(?:live|test)_[A-Za-z0-9]{16,}"), "stripe_key", None),
    )),
    ("eyJ", (
        (re.compile(r"eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]*"), "jwt", None),
    )),
)

_PEM_BEGIN = re.compile(r"-----BEGIN ([A-Z0-9 ]*PRIVATE KEY[A-Z ]*)-----")
_PEM_END = re.compile(r"-----END [A-Z0-9 ]*PRIVATE KEY[A-Z ]*-----")
_PEM_BODY_RUN = re.compile(r"[A-Za-z0-9+/=]{40,}")
_PEM_OPEN_BODY = re.compile(
    r"(?:(?:\s|\\[nr])*(?:[A-Za-z0-9+/=]{16,}|[A-Z][A-Za-z-]*: [^\n\\]*))+"
)
_PEM_MAX_BODY = 65536

_SLACK_WEBHOOK = re.compile(r"://hooks\.slack\.com/(?:services|workflows)/[A-Za-z0-9/_\-]{20,}")
_URL_CREDENTIALS = re.compile(r"://([^/\s:@'\"<>`\[\]]*):([^@\s/'\"<>`\[\]]+)@")
# The value of an ``Authorization``-like assignment: a scheme, then the credential.
_AUTH_VALUE = re.compile(r"(?:Bearer|Basic|Token|bearer|token)[ \t]+([A-Za-z0-9._~+/\-]{16,}=*)")

# An assignment on one line: NAME (optionally quoted), an operator, a value.
_ASSIGNMENT = re.compile(
    r"""(?<![\w$@.\-])(?P<name>[$@]?[A-Za-z_][\w$.\-]*+)(?P<nq>["'`]?)[ \t]*
        (?P<op>:=|=>|=(?![=~>])|:(?![:=])(?:[ \t]*[A-Za-z_][\w.\[\], |]*[ \t]*=(?![=>]))?)[ \t]*
        (?:(?P<q>["'`])(?P<qv>(?:(?!(?P=q))[^\\\n]|\\.)*+)(?P=q)
          |(?P<uv>[^\s,;&"'`]++))""",
    re.VERBOSE,
)
_NAME_HINTS = ("pass", "pwd", "secret", "token", "credential", "auth", "key")
"""A name holding none of these is not secret (checked before splitting it into words)."""
# Where a secret-looking assignment may be: a trigger word (in the lower-cased text), the rest of
# its identifier, an optional closing quote, an operator. One scan per trigger word, each a
# pattern that starts with a literal so the regex engine can skip ahead quickly (an alternation
# of words would be two to three times slower than the scans it replaces). ``key`` counts only
# after a qualifier (``api_key``, ``accessKey``, ``PRIVATE-KEY``), checked in Python; its scan
# also finds the ``PRIVATE KEY-----`` of PEM headers.
_OPERATOR = r"""[\w$.\-]*+["'`]?[ \t]*(?::=|=>|=(?![=~>])|:(?![:=]))"""
_NAME_SCANS = tuple(
    re.compile(trigger + _OPERATOR) for trigger in ("pass", "secret", "token", "credential",
                                                    "auth")
)
_KEY_SCAN = re.compile(r"key(?:(?P<pem>-----| block-----)|" + _OPERATOR + ")")
_KEY_TRIGGER_QUALIFIERS = tuple(
    q + sep for q in ("api", "access", "private", "secret", "signing", "encryption", "master",
                      "client")
    for sep in ("", "_", "-")
)
_SLOW_PATH_TRIGGERS = ("pass", "secret", "token", "credential", "auth", "key")
_IDENTIFIER_CHARS = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_$.-"
)
_SECRET_SEGMENTS = {
    "password": "password", "passwd": "password", "passphrase": "password", "pass": "password",
    "pwd": "password", "secret": "secret", "secrets": "secret", "token": "token",
    "credential": "credential", "credentials": "credential", "auth": "auth",
    "authorization": "auth", "apikey": "api_key", "accesskey": "api_key",
    "privatekey": "private_key", "secretkey": "secret",
}
_KEY_QUALIFIERS = {"api": "api_key", "access": "api_key", "private": "private_key",
                   "secret": "secret", "signing": "private_key", "encryption": "secret",
                   "master": "secret", "client": "secret"}
# A secret word followed by one of these names something about the secret, not the secret.
_NOT_SECRET_SUFFIXES = frozenset({
    "file", "files", "path", "dir", "env", "var", "name", "names", "url", "uri", "endpoint",
    "length", "len", "size", "min", "max", "count", "hint", "label", "field", "type", "kind",
    "prefix", "suffix", "regex", "re", "pattern", "placeholder", "message", "msg", "error",
    "id", "ids", "expiry", "expires", "ttl", "timeout", "provider", "method", "mode", "format",
    "policy", "required", "enabled", "class", "source", "store", "manager", "header",
    "headers", "param", "parameter", "arg", "flag", "option", "scope", "scopes", "validator",
    "validators",
})
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_SEGMENT_SPLIT = re.compile(r"[_.\-$@]+")
_PLACEHOLDERS = frozenset({
    "changeme", "change_me", "changeit", "password", "passw0rd", "secret", "token", "example",
    "placeholder", "redacted", "required", "optional", "undefined", "null", "none", "string",
    "your_password", "yourpassword", "mypassword", "my_password", "password123", "dummy",
    "notasecret", "not_a_secret", "test_password", "testpassword", "xxxxxxxx",
})
_PLACEHOLDER_SHAPE = re.compile(
    r"""(?ix)
    x{3,} | \*{3,} | \.{3,} | -+ | _+ | 0+ | 1234567890? | (?:your|my)[-_ ].*
    | <.*> | \$\{.*\} | \$\(.*\) | \$[A-Za-z_]\w* | \{\{.*\}\} | \{[A-Za-z_]\w*\} | %\(.*\)s
    | %s | .*(?:example|placeholder|redacted|dummy|changeme|insert[-_ ]?here).*
    """
)
_DOTTED_IDENTIFIER = re.compile(r"[A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)+(?:\(\))?")
_SNAKE_IDENTIFIER = re.compile(r"[A-Za-z]+(?:_[A-Za-z]+)+")
_BARE_WORD = re.compile(r"[A-Za-z_]+")
_PATH_LIKE = re.compile(r"(?:~|\.{1,2})?/[\w./\-]*")
_NUMBER = re.compile(r"[-+]?[\d.,_:]+")


def _secret_name_kind(name: str) -> str | None:
    """The kind of secret a variable/key name suggests (``OPENAI_API_KEY`` → api_key), or None."""
    lowered = name.lower()
    if not any(hint in lowered for hint in _NAME_HINTS):
        return None
    spaced = _CAMEL.sub("_", name.strip("\"'`$@"))
    segments = [s for s in _SEGMENT_SPLIT.split(spaced.lower()) if s]
    if not segments:
        return None
    found: str | None = None
    last_secret = 0
    for index, segment in enumerate(segments):
        kind = _SECRET_SEGMENTS.get(segment)
        if kind is None and segment == "key" and index:
            kind = _KEY_QUALIFIERS.get(segments[index - 1])
        if kind is not None:
            found = kind
            last_secret = index
    if found is None:
        return None
    tail = segments[last_secret + 1:]
    if tail and tail[-1] in _NOT_SECRET_SUFFIXES:
        return None
    if "aws" in segments and found in ("secret", "api_key") and "secret" in segments:
        return "aws_secret_access_key"
    return found


def _is_auth_name(name: str) -> bool:
    """A header or variable that carries credentials: ``Authorization``, ``auth_header``."""
    lowered = name.lower()
    return "auth" in lowered or "token" in lowered


def _is_placeholder(value: str) -> bool:
    lowered = value.lower()
    return (
        lowered in _PLACEHOLDERS
        or value.startswith(REDACTED_PREFIX)
        or _PLACEHOLDER_SHAPE.fullmatch(value) is not None
    )


def _looks_like_data(value: str, *, quoted: bool) -> bool:
    """Whether an assignment's value looks like a secret literal rather than code or text."""
    if len(value) < MIN_VALUE_LENGTH or _is_placeholder(value):
        return False
    if any(c.isspace() for c in value) or "://" in value or value.endswith(":"):
        return False
    if (_DOTTED_IDENTIFIER.fullmatch(value) or _SNAKE_IDENTIFIER.fullmatch(value)
            or _PATH_LIKE.fullmatch(value) or _NUMBER.fullmatch(value)):
        return False
    if _BARE_WORD.fullmatch(value):
        return False  # a word or an identifier: ``"IDENTIFIER"``, ``token = default_token``
    if quoted:
        return not ("{" in value and "}" in value)  # a format/template string
    # Unquoted: config values (``KEY=abc123``) but not code (``token = self.token``).
    return not (any(c in value for c in "()[]{}<>$") or value.endswith("!"))


def _redact_pem(text: str, counts: Counter[str]) -> str:
    out: list[str] = []
    position = 0
    for begin in _PEM_BEGIN.finditer(text):
        if begin.start() < position:
            continue
        end = _PEM_END.search(text, begin.end(), begin.end() + _PEM_MAX_BODY)
        if end is not None and _PEM_BODY_RUN.search(text, begin.end(), end.start()):
            stop = end.end()
        else:
            body = _PEM_OPEN_BODY.match(text, begin.end())
            if body is None or not _PEM_BODY_RUN.search(body.group()):
                continue  # a header mentioned in code or prose, not a key
            stop = body.end()
        out.append(text[position:begin.start()])
        out.append(_mark("private_key"))
        counts["private_key"] += 1
        position = stop
    if not out:
        return text
    out.append(text[position:])
    return "".join(out)


def _redact_urls(text: str, counts: Counter[str]) -> str:
    """Passwords in URLs (``scheme://user:password@host``) and Slack webhook URLs."""
    out: list[str] = []
    position = 0
    start = text.find("://")
    while start != -1:
        if text.startswith("hooks.slack.com/", start + 3):
            hook = _SLACK_WEBHOOK.match(text, start)
            if hook is not None:
                out.append(text[position:start + 3])
                out.append(_mark("slack_webhook"))
                counts["slack_webhook"] += 1
                position = hook.end()
                start = text.find("://", position)
                continue
        match = _URL_CREDENTIALS.match(text, start)
        if match is not None:
            password = match.group(2)
            if (not _is_placeholder(password) and password != match.group(1)
                    and password.lower() not in ("pass", "passwd", "pw", "pwd")):
                out.append(text[position:match.start(2)])
                out.append(_mark("url_password"))
                counts["url_password"] += 1
                position = match.end(2)
        start = text.find("://", start + 3)
    if not out:
        return text
    out.append(text[position:])
    return "".join(out)


def _assignment_starts(text: str, lowered: str) -> tuple[list[int], bool]:
    """Start offsets of identifiers that hold a trigger word and are followed by an assignment
    operator, in order; and whether a PEM private-key header may be present."""
    found: list[int] = []
    for scan in _NAME_SCANS:
        found.extend(match.start() for match in scan.finditer(lowered))
    pem = False
    for match in _KEY_SCAN.finditer(lowered):
        position = match.start()
        if match.group("pem") is not None:
            pem = pem or lowered.endswith("private ", max(0, position - 8), position)
        elif lowered.endswith(_KEY_TRIGGER_QUALIFIERS, max(0, position - 11), position):
            found.append(position)
    if not found:
        return [], pem
    starts: set[int] = set()
    for position in found:
        while position and text[position - 1] in _IDENTIFIER_CHARS:
            position -= 1
        if position and text[position - 1] == "@":
            position -= 1  # a Ruby instance variable
        starts.add(position)
    return sorted(starts), pem


def _redact_assignments(text: str, starts: list[int], counts: Counter[str]) -> str:
    out: list[str] = []
    position = 0
    for start in starts:
        if start < position:
            continue  # inside a value already replaced
        match = _ASSIGNMENT.match(text, start)
        if match is None:
            continue
        name = match.group("name")
        quoted = match.group("q") is not None
        group = "qv" if quoted else "uv"
        scheme = _AUTH_VALUE.match(text, match.start(group))
        if scheme is not None and _is_auth_name(name):
            token = scheme.group(1)
            if not _is_placeholder(token) and _has_digit_and_letter(token):
                out.append(text[position:scheme.start(1)])
                out.append(_mark("bearer_token"))
                counts["bearer_token"] += 1
                position = scheme.end(1)
            continue
        kind = _secret_name_kind(name)
        if kind is None:
            continue
        value = match.group(group)
        if not _looks_like_data(value, quoted=quoted):
            continue
        out.append(text[position:match.start(group)])
        out.append(_mark(kind))
        counts[kind] += 1
        position = match.end(group)
    if not out:
        return text
    out.append(text[position:])
    return "".join(out)


def _redact_all_assignments(text: str, counts: Counter[str]) -> str:
    """The slow path, for text whose lower-case form has another length (offsets differ)."""
    starts = [m.start() for m in _ASSIGNMENT.finditer(text)]
    return _redact_assignments(text, starts, counts)


def redact_secrets(text: str) -> tuple[str, Counter[str]]:
    """``text`` with secret-looking tokens replaced by ``[REDACTED:<kind>]``, and the count of
    replacements by kind. Text with nothing to redact is returned as is (the same object)."""
    counts: Counter[str] = Counter()
    lowered = text.lower()
    aligned = len(lowered) == len(text)  # a few characters lower-case to two (U+0130)
    if aligned:
        starts, pem = _assignment_starts(text, lowered)
    else:
        starts, pem = [], "PRIVATE KEY" in text
    if pem:
        text = _redact_pem(text, counts)
    for gate, rules in _TOKEN_GROUPS:
        if (gate not in text) if isinstance(gate, str) else (gate.search(text) is None):
            continue
        for pattern, kind, check in rules:
            text = pattern.sub(functools.partial(_replace_token, kind, check, counts), text)
    if "://" in text:
        text = _redact_urls(text, counts)
    if counts:  # text changed: offsets moved
        lowered = text.lower()
        aligned = len(lowered) == len(text)
        if aligned:
            starts = _assignment_starts(text, lowered)[0]
    if not aligned:
        if any(trigger in lowered for trigger in _SLOW_PATH_TRIGGERS):
            text = _redact_all_assignments(text, counts)
    elif starts:
        text = _redact_assignments(text, starts, counts)
    return text, counts


def _replace_token(kind: str, check: Callable[[str], bool] | None, counts: Counter[str],
                   match: re.Match[str]) -> str:
    token = match.group()
    if _continues_word(match) or (check is not None and not check(token)):
        return token
    counts[kind] += 1
    return _mark(kind)


def _continues_word(match: re.Match[str]) -> bool:
    start = match.start()
    if not start:
        return False
    before = match.string[start - 1]
    return before.isalnum() or before in "_-"
