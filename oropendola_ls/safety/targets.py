"""Path normalisation and classification for the gate.

One job: say what a resolved path *is* — the filesystem root, the home directory, a system
directory, a shell start-up file, a secret, a device — relative to a tracked working directory.

Working directories are strings: an absolute path, ``"."`` for the workspace (whose absolute
location the gate does not know), ``"./.."``-style paths relative to it, or ``None`` (unknown).
"""

from __future__ import annotations

import os
import re
from typing import NamedTuple

__all__ = [
    "HOME",
    "TRUSTED_BIN_DIRS",
    "WORKSPACE",
    "Target",
    "basename",
    "classify_delete",
    "describe",
    "is_benign_device",
    "is_catastrophic_delete",
    "is_git_hooks",
    "is_network_device",
    "is_protected_write",
    "is_secret_path",
    "is_secret_var",
    "resolve",
]

TRUSTED_BIN_DIRS = frozenset(
    {"/bin", "/usr/bin", "/usr/local/bin", "/sbin", "/usr/sbin", "/usr/local/sbin",
     "/opt/homebrew/bin"}
)
"""Where a path-qualified program is the one ``PATH`` would find (``/usr/bin/git`` is git)."""


def _home() -> str:
    home = os.path.expanduser("~")
    if not home.startswith("/") or home == "/":
        return "/root"
    return home.rstrip("/") or "/root"


HOME = _home()
WORKSPACE = "."

_GLOB = frozenset("*?[")


class Target(NamedTuple):
    """A resolved path. ``path`` is absolute (``/...``), workspace-relative (``.``/``./x``), or
    None when unknown; ``contents`` is true for a glob (``dir/*``): everything inside ``path``."""

    path: str | None
    contents: bool = False


def basename(value: str) -> str:
    stripped = value.rstrip("/")
    if not stripped:
        return value
    return stripped.rsplit("/", 1)[-1]


def _normalise(segments: list[str], absolute: bool) -> list[str]:
    out: list[str] = []
    for seg in segments:
        if seg in ("", "."):
            continue
        if seg == "..":
            if out and out[-1] != "..":
                out.pop()
            elif not absolute:
                out.append("..")
            continue
        out.append(seg)
    return out


def _plain(v: str) -> bool:
    """Already normal: no globs, no empty, ``.`` or ``..`` segments, no trailing slash."""
    return not (
        v.startswith(".")
        or "/." in v
        or "//" in v
        or v.endswith("/")
        or "*" in v
        or "?" in v
        or "[" in v
    )


def resolve(value: str, cwd: str | None) -> Target:
    """Resolve ``value`` (tilde already expanded) against ``cwd``."""
    if value.startswith("/"):
        if value == "/" or (_plain(value[1:]) and value[1:]):
            return Target(value)
        absolute = True
        joined = value
    elif cwd is None:
        return Target(None)
    else:
        if value and _plain(value) and (cwd == "." or (cwd.startswith("/") and _plain(cwd[1:]))):
            return Target(("./" if cwd == "." else cwd.rstrip("/") + "/") + value)
        absolute = cwd.startswith("/")
        joined = cwd + "/" + value
    contents = False
    segments = joined.split("/")
    if "*" in joined or "?" in joined or "[" in joined:
        for i, seg in enumerate(segments):
            if "*" in seg or "?" in seg or "[" in seg:
                segments = segments[:i]
                contents = True
                break
    norm = _normalise(segments, absolute)
    if absolute:
        return Target("/" + "/".join(norm), contents)
    return Target("./" + "/".join(norm) if norm else ".", contents)


# --- classification -------------------------------------------------------------------------

_SYSTEM_ROOTS = frozenset(
    {
        "/bin",
        "/boot",
        "/dev",
        "/etc",
        "/lib",
        "/lib32",
        "/lib64",
        "/libx32",
        "/opt",
        "/proc",
        "/root",
        "/run",
        "/sbin",
        "/srv",
        "/sys",
        "/usr",
        "/var",
        "/snap",
        "/System",
        "/Library",
        "/Applications",
        "/private",
        "/home",
        "/Users",
        "/nix",
    }
)
_NOT_SYSTEM = ("/var/tmp", "/var/folders", "/private/tmp", "/private/var/folders")  # noqa: S108
_WRITE_SYSTEM_ROOTS = _SYSTEM_ROOTS - {"/home", "/Users", "/root", "/run", "/dev"}

_RC_FILES = frozenset(
    {
        ".bashrc",
        ".bash_profile",
        ".bash_login",
        ".bash_logout",
        ".profile",
        ".zshrc",
        ".zshenv",
        ".zprofile",
        ".zlogin",
        ".zlogout",
        ".kshrc",
        ".mkshrc",
        ".cshrc",
        ".tcshrc",
        ".login",
        ".logout",
        ".bash_history",
        ".zsh_history",
        ".history",
        ".sh_history",
        ".inputrc",
        ".bash_aliases",
        ".xinitrc",
        ".xprofile",
        ".xsessionrc",
    }
)
_HOME_PROTECTED_DIRS = (
    ".ssh",
    ".gnupg",
    ".config/fish",
    ".config/autostart",
    ".config/systemd",
    "Library/LaunchAgents",
    ".local/bin",
    ".oh-my-zsh",
)

_SECRET_HOME_PATHS = (
    ".ssh",
    ".gnupg",
    ".aws",
    ".azure",
    ".config/gcloud",
    ".config/gh/hosts.yml",
    ".docker/config.json",
    ".kube/config",
    ".netrc",
    ".git-credentials",
    ".npmrc",
    ".pypirc",
    ".pgpass",
    ".vault-token",
    ".terraformrc",
    ".config/oropendola-ls",
)
_SECRET_NAMES = frozenset(
    {
        ".netrc",
        ".git-credentials",
        ".pgpass",
        ".npmrc",
        ".pypirc",
        "credentials",
        ".vault-token",
        "shadow",
        "gshadow",
        "master.key",
        "secrets.yml",
        "secrets.yaml",
        "secrets.json",
        "credentials.json",
        "service-account.json",
        ".htpasswd",
        "sudoers",
        "environ",
        "session.json",
    }
)
_SECRET_PREFIXES = ("id_rsa", "id_dsa", "id_ecdsa", "id_ed25519", "id_xmss", ".env")
_SECRET_SUFFIXES = (".pem", ".key", ".p12", ".pfx", ".keystore", ".jks", ".kdbx", ".ppk")
_NOT_SECRET_SUFFIXES = (".pub", ".example", ".sample", ".template", ".dist", ".md", ".txt")
_SECRET_SEGMENTS = frozenset({".ssh", ".gnupg", ".aws", ".azure", "gcloud"})


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root + "/")


def _home_relative(path: str) -> str | None:
    if path == HOME:
        return ""
    if path.startswith(HOME + "/"):
        return path[len(HOME) + 1 :]
    return None


def is_catastrophic_delete(target: Target) -> bool:
    """A recursive delete of this target destroys the system, the home directory, or the
    workspace's ancestors: ``/``, ``/*``, ``~``, ``~/*``, ancestors of home, system directories
    and their direct children, ``..``."""
    path = target.path
    if path is None:
        return False
    if not path.startswith("/"):
        # workspace-relative: "." is the workspace itself; "./.." and above are its ancestors
        rest = path[2:] if path.startswith("./") else ""
        return bool(rest) and all(seg == ".." for seg in rest.split("/"))
    if path == "/" or path == HOME or HOME.startswith(path + "/"):
        return True
    if any(_under(path, safe) for safe in _NOT_SYSTEM):
        return False
    if path in _SYSTEM_ROOTS:
        return True
    parent = path.rsplit("/", 1)[0] or "/"
    return parent in _SYSTEM_ROOTS and parent != HOME


def is_protected_write(path: str) -> bool:
    """Writing here changes how the system or every future shell behaves: shell start-up and
    history files, ``~/.ssh``, persistence directories, system paths."""
    if not path.startswith("/"):
        return False
    rel = _home_relative(path)
    if rel is not None:
        if rel in _RC_FILES:
            return True
        return any(_under(rel, d) for d in _HOME_PROTECTED_DIRS)
    if path.startswith("/dev/"):
        return not is_benign_device(path)
    if any(_under(path, safe) for safe in _NOT_SYSTEM):
        return False
    return any(_under(path, root) for root in _WRITE_SYSTEM_ROOTS)


def is_git_hooks(path: str) -> bool:
    return "/.git/hooks/" in path + "/" or path.startswith(".git/hooks") or "/.git/config" in path


_BENIGN_DEVICES = frozenset(
    {
        "/dev/null",
        "/dev/stdout",
        "/dev/stderr",
        "/dev/stdin",
        "/dev/tty",
        "/dev/zero",
        "/dev/random",
        "/dev/urandom",
        "/dev/full",
    }
)


def is_benign_device(path: str) -> bool:
    return path in _BENIGN_DEVICES or path.startswith("/dev/fd/") or path.startswith("/dev/pts/")


def is_network_device(path: str) -> bool:
    return path.startswith("/dev/tcp/") or path.startswith("/dev/udp/")


def is_secret_path(value: str, cwd: str | None = None) -> bool:
    """Reading this file puts credentials into the transcript (which leaves the machine)."""
    if not _MAYBE_SECRET.search(value) and (cwd is None or not cwd.startswith(HOME)):
        return False
    if not value:
        return False
    base = basename(value)
    if base in _SECRET_NAMES:
        return base != "environ" or value.startswith("/proc/")
    if base.endswith(_NOT_SECRET_SUFFIXES):
        return False
    if base.startswith(_SECRET_PREFIXES) or base.endswith(_SECRET_SUFFIXES):
        return True
    if base in _SECRET_SEGMENTS:
        return True
    if "/" in value and any(seg in _SECRET_SEGMENTS for seg in value.split("/")[:-1]):
        return True
    if value.startswith("/"):
        path: str | None = resolve(value, None).path if ("/." in value or "//" in value) else value
    elif cwd is not None and cwd.startswith("/"):
        path = resolve(value, cwd).path
    else:
        return False
    if path:
        rel = _home_relative(path)
        if rel is not None and rel and any(_under(rel, s) for s in _SECRET_HOME_PATHS):
            return True
        if path.startswith("/etc/ssh/ssh_host_") and not path.endswith(".pub"):
            return True
    return False


# Every secret path contains one of these (a quick reject for the common case). Paths relative to
# a cwd inside the home directory are checked in full.
_MAYBE_SECRET = re.compile(
    r"ssh|gnupg|\.aws|azure|gcloud|\.env|id_|\.pem|\.key|\.p12|\.pfx|keystore|\.jks|\.kdbx|\.ppk|"
    r"credential|netrc|npmrc|pypirc|pgpass|vault|terraformrc|shadow|sudoers|environ|secret|master\.key|"
    r"htpasswd|hosts\.yml|\.docker|\.kube|session\.json|oropendola|service-account"
)

_SECRET_VAR_WORDS = frozenset(
    {
        "KEY",
        "KEYS",
        "TOKEN",
        "TOKENS",
        "SECRET",
        "SECRETS",
        "PASSWORD",
        "PASSWORDS",
        "PASSWD",
        "PASS",
        "PASSPHRASE",
        "CREDENTIAL",
        "CREDENTIALS",
        "CREDS",
        "AUTH",
        "APIKEY",
        "PAT",
        "PRIVATE",
        "SESSION",
        "COOKIE",
        "BEARER",
        "SIGNATURE",
        "DSN",
    }
)
_SECRET_VAR_SUFFIXES = ("TOKEN", "SECRET", "PASSWORD", "APIKEY", "PASSWD")


def is_secret_var(name: str) -> bool:
    """``API_KEY``, ``GITHUB_TOKEN``, ``AWS_SECRET_ACCESS_KEY``, ``DB_PASSWORD``..."""
    upper = name.upper()
    if upper in ("PWD", "OLDPWD", "HOME", "PATH", "KEYMAP"):
        return False
    return any(
        part in _SECRET_VAR_WORDS or part.endswith(_SECRET_VAR_SUFFIXES)
        for part in upper.split("_")
        if part
    )


def classify_delete(target: Target, value: str) -> str:
    """What deleting ``value`` would destroy.

    ``protected`` (shell start-up/history file, ``~/.ssh``), ``catastrophic`` (see
    `is_catastrophic_delete`), ``workspace`` (the workspace itself or all of its contents),
    ``unknown`` (cannot tell where it points) or ``ordinary``.
    """
    path = target.path
    if path is None:
        return "unknown"
    if path.startswith("/"):
        rel = _home_relative(path)
        if (
            rel
            and not target.contents
            and (rel in _RC_FILES or any(_under(rel, d) for d in _HOME_PROTECTED_DIRS))
        ):
            return "protected"
        if rel and target.contents and any(_under(rel, d) for d in _HOME_PROTECTED_DIRS):
            return "protected"
    if (
        path.startswith("/")
        and not target.contents
        and path not in _SYSTEM_ROOTS
        and (_home_relative(path) is None and is_protected_write(path))
    ):
        return "protected"  # a file or directory inside a system directory
    if is_catastrophic_delete(target):
        return "catastrophic"
    if path == ".":
        return "workspace"
    return "ordinary"


def describe(path: str | None) -> str:
    """A few words for messages: what this path is."""
    if path is None:
        return "an unknown location"
    if path == "/":
        return "the filesystem root"
    if path == HOME:
        return "the home directory"
    if path.startswith("/") and HOME.startswith(path + "/"):
        return "a directory containing the home directory"
    if path == ".":
        return "the workspace"
    if path.startswith("./.."):
        return "a directory containing the workspace"
    return "a system directory" if path.startswith("/") else path
