"""Inline code in other languages: what a ``python -c``, ``node -e``, ``perl -e``, ``ruby -e``,
``php -r`` or ``awk`` program would make the shell do.

One job: turn a program text into `Effect`s — shell text it runs, paths it deletes or writes,
outright red flags. Python is parsed with `ast`; the others are scanned for string literals passed
to the usual process-spawning calls. Anything not recognised stays "inline code" (confirm).
"""

from __future__ import annotations

import ast
import re
import shlex
from typing import Literal, NamedTuple

from oropendola_ls.safety.targets import is_secret_path, is_secret_var

__all__ = ["Effect", "awk_effects", "code_effects", "python_effects"]

EffectKind = Literal["shell", "delete", "write", "block", "confirm"]


class Effect(NamedTuple):
    kind: EffectKind
    value: str  # shell text, path, or message
    recursive: bool = False
    rule: str = ""


# --- Python -----------------------------------------------------------------------------------

_PY_SHELL = frozenset(
    {
        "system",
        "popen",
        "getoutput",
        "getstatusoutput",
        "call",
        "run",
        "check_call",
        "check_output",
        "Popen",
        "spawn",
        "startfile",
        "run_command",
        "create_subprocess_shell",
        "create_subprocess_exec",
    }
)
_PY_EXEC_PREFIXES = ("execl", "execv", "spawnl", "spawnv", "posix_spawn")
_PY_DELETE = {"rmtree": True, "remove": False, "unlink": False, "rmdir": False, "removedirs": True}
_PY_FETCH = frozenset(
    {"urlopen", "urlretrieve", "Request", "recv", "recvfrom", "read_bytes_from_url"}
)
_PY_FETCH_MODULES = frozenset(
    {"requests", "httpx", "urllib", "urllib2", "urllib3", "aiohttp", "http", "socket"}
)
_PY_DECODE = frozenset(
    {
        "b64decode",
        "b32decode",
        "b16decode",
        "a85decode",
        "decodebytes",
        "unhexlify",
        "fromhex",
        "decompress",
        "loads",
    }
)
_PY_EVAL = frozenset({"exec", "eval"})


def _dotted(node: ast.expr) -> str:
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
    elif isinstance(node, ast.Call):
        parts.append(_dotted(node.func) + "()")
    return ".".join(reversed(parts))


def _const_str(node: ast.expr) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return None
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _const_str(node.left), _const_str(node.right)
        if left is not None and right is not None:
            return left + right
    return None


def _argv_list(node: ast.expr) -> list[str] | None:
    if isinstance(node, (ast.List, ast.Tuple)):
        out = [_const_str(e) for e in node.elts]
        if all(o is not None for o in out):
            return [o for o in out if o is not None]
    return None


def _fetches(node: ast.AST) -> tuple[bool, bool]:
    fetch = decode = False
    for sub in ast.walk(node):
        if isinstance(sub, ast.Call):
            name = _dotted(sub.func)
            last = name.rsplit(".", 1)[-1]
            head = name.split(".", 1)[0]
            if last in _PY_FETCH or (
                head in _PY_FETCH_MODULES and last in ("get", "post", "request", "urlopen")
            ):
                fetch = True
            if last in _PY_DECODE:
                decode = True
    return fetch, decode


_PY_NET_MODULES = frozenset(
    {
        "socket",
        "requests",
        "httpx",
        "urllib",
        "urllib2",
        "urllib3",
        "aiohttp",
        "http",
        "ftplib",
        "smtplib",
        "telnetlib",
        "paramiko",
        "websocket",
        "websockets",
    }
)
_PY_NET_CALLS = frozenset(
    {
        "urlopen",
        "Request",
        "post",
        "put",
        "patch",
        "get",
        "request",
        "send",
        "sendall",
        "sendto",
        "connect",
        "create_connection",
        "urlretrieve",
        "sendmail",
        "storbinary",
        "open_connection",
    }
)
_PY_SHELLS = ("/bin/sh", "/bin/bash", "sh", "bash", "/bin/zsh", "zsh", "cmd.exe", "powershell")


class _PyFacts:
    """One walk over a Python tree: imports, calls, loops, secret reads."""

    def __init__(self, tree: ast.AST) -> None:
        self.imports: set[str] = set()
        self.calls: list[tuple[ast.Call, str, str]] = []  # (call, dotted name, last part)
        self.loops: list[ast.AST] = []
        self.secrets = False
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                name = _dotted(node.func)
                last = name.rsplit(".", 1)[-1]
                self.calls.append((node, name, last))
                if name == "__import__" and node.args:
                    module = _const_str(node.args[0])
                    if module:
                        self.imports.add(module.split(".", 1)[0])
                if not self.secrets:
                    self.secrets = _call_reads_secret(node, name, last)
            elif isinstance(node, ast.Import):
                self.imports.update(a.name.split(".", 1)[0] for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module:
                self.imports.add(node.module.split(".", 1)[0])
            elif isinstance(node, (ast.While, ast.For)):
                self.loops.append(node)
            elif (
                isinstance(node, ast.Subscript)
                and not self.secrets
                and _dotted(node.value).endswith("environ")
            ):
                key = _const_str(node.slice) if isinstance(node.slice, ast.expr) else None
                self.secrets = key is None or is_secret_var(key)


def _call_reads_secret(node: ast.Call, name: str, last: str) -> bool:
    """os.getenv / environ.get of secret-looking names (or the whole environment), secret files."""
    if last in ("getenv", "getenvb") or name.endswith("environ.get"):
        key = _const_str(node.args[0]) if node.args else None
        return key is None or is_secret_var(key)
    if last in ("open", "Path", "read_text", "read_bytes") and node.args:
        path = _const_str(node.args[0])
        return path is not None and is_secret_path(path)
    return any(_dotted(a) in ("os.environ", "environ") for a in node.args)


def _spawns_shell(facts: _PyFacts) -> bool:
    for node, _name, last in facts.calls:
        if last == "dup2":
            return True
        if last in _PY_SHELL or last.startswith(_PY_EXEC_PREFIXES) or last == "spawn":
            for arg in node.args[:1]:
                text = _const_str(arg)
                argv = _argv_list(arg)
                program = text.split()[0] if text and text.split() else (argv[0] if argv else "")
                if program in _PY_SHELLS or program.rsplit("/", 1)[-1] in ("sh", "bash", "zsh"):
                    return True
    return False


def python_effects(code: str) -> list[Effect]:
    """Effects of a Python program (``python -c``, ``python - <<EOF``)."""
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return [Effect("confirm", "Python code that does not parse", rule="inline-unparseable")]
    facts = _PyFacts(tree)
    effects: list[Effect] = []
    if facts.imports & _PY_NET_MODULES and any(last in _PY_NET_CALLS for _, _, last in facts.calls):
        if facts.secrets:
            effects.append(
                Effect(
                    "block",
                    "sends secrets (environment or secret files) over the network",
                    rule="secret-to-network",
                )
            )
        if _spawns_shell(facts):
            effects.append(
                Effect(
                    "block",
                    "connects a shell to a network socket (remote shell)",
                    rule="reverse-shell",
                )
            )
        if not effects:
            effects.append(
                Effect("confirm", "Python code that talks to the network", rule="inline-network")
            )
    for loop in facts.loops:
        for sub in ast.walk(loop):
            if isinstance(sub, ast.Call) and _dotted(sub.func).rsplit(".", 1)[-1] in (
                "fork",
                "forkpty",
            ):
                effects.append(
                    Effect("block", "forks processes in a loop (fork bomb)", rule="fork-bomb")
                )
                break
    for node, name, last in facts.calls:
        if last in _PY_EVAL:
            fetch, decode = _fetches(node)
            if fetch or decode:
                effects.append(
                    Effect("block", "executes code it downloads or decodes", rule="fetch-to-exec")
                )
            else:
                effects.append(
                    Effect("confirm", f"calls {last}() on dynamic code", rule="inline-eval")
                )
            continue
        if last in _PY_SHELL or last.startswith(_PY_EXEC_PREFIXES) or name == "pty.spawn":
            if not node.args:
                effects.append(
                    Effect("confirm", f"{name}() runs a program", rule="inline-subprocess")
                )
                continue
            first = node.args[0]
            text = _const_str(first)
            argv = _argv_list(first)
            if last.startswith(_PY_EXEC_PREFIXES) and text is not None:
                rest = [a for a in (_const_str(x) for x in node.args[1:]) if a is not None]
                argv = [rest[0] if rest else text, *rest[1:]] if rest else [text]
                text = None
            if text is not None:
                effects.append(Effect("shell", text))
            elif argv:
                effects.append(Effect("shell", shlex.join(argv)))
            else:
                effects.append(
                    Effect(
                        "confirm",
                        f"{name}() runs a command built at run time",
                        rule="inline-subprocess",
                    )
                )
            continue
        if last in _PY_DELETE and node.args:
            path = _const_str(node.args[0])
            if path is not None:
                effects.append(Effect("delete", path, _PY_DELETE[last]))
            else:
                effects.append(
                    Effect(
                        "confirm",
                        f"{name}() deletes a path built at run time",
                        rule="inline-delete",
                    )
                )
            continue
        if last in ("open", "write_text", "write_bytes") and node.args:
            mode = _const_str(node.args[1]) if len(node.args) > 1 else None
            for kw in node.keywords:
                if kw.arg == "mode":
                    mode = _const_str(kw.value)
            path = _const_str(node.args[0])
            if last == "open" and (mode is None or not any(c in mode for c in "wax+")):
                continue
            if path is not None:
                effects.append(Effect("write", path))
    return effects


# --- other interpreters ------------------------------------------------------------------------

_STR = r"""(?P<q>['"`])(?P<body>(?:\\.|(?!(?P=q)).)*?)(?P=q)"""
_JS_SPAWN = re.compile(
    r"\b(?:execSync|exec|spawnSync|spawn|execFileSync|execFile|system|execa|execaSync|\$)\s*\(\s*"
    + _STR
    + r"(?P<args>\s*,\s*\[[^\]]*\])?",
    re.S,
)
_PERLISH_SPAWN = re.compile(
    r"\b(?:system|exec|shell_exec|passthru|popen|proc_open|spawn|capture2e?|capture3|popen3|pcntl_exec)"
    r"\s*\(?\s*" + _STR,
    re.S,
)
_BACKTICK = re.compile(r"`((?:\\.|[^`\\])*)`", re.S)
_QX = re.compile(r"(?:\bqx|%x)\s*([({\[/|!])(.*?)[)}\]/|!]", re.S)
_LIST_STR = re.compile(r"""(['"])((?:\\.|(?!\1).)*)\1""", re.S)
_FORK_LOOP = re.compile(
    r"\bfork\b.*\b(?:while|loop|for|until)\b|\b(?:while|loop|for|until)\b.*\bfork\b", re.S
)
_DELETE_CALL = re.compile(
    r"\b(?P<fn>rmSync|rmdirSync|rm_rf|rm_r|rmtree|remove_dir_all|unlinkSync|rmdir|unlink|rimraf)"
    r"\s*\(?\s*(['\"])(?P<path>[^'\"]*)\2",
)
_EVAL_FETCH = re.compile(
    r"\beval\b|\bFunction\s*\(|\bnew\s+Function\b|\binstance_eval\b|\bsystem\s*\("
)
_FETCHY = re.compile(
    r"\bfetch\s*\(|\bhttps?\.get\b|\bhttps?://|Net::HTTP|LWP::|open-uri|\bcurl_exec\b|"
    r"file_get_contents\s*\(\s*['\"]https?|\bURI\.open\b|\bbase64_decode\b|\batob\s*\(|"
    r"Buffer\.from\([^)]*base64|decode_base64|\bunpack\s*\(\s*['\"]m"
)


_SOCKETISH = re.compile(
    r"\bsocket\b|\bSocket\b|TCPSocket|net\.connect|\bfsockopen\b|IO::Socket|\bfetch\s*\(|"
    r"https?\.request|\baxios\b|Net::HTTP|LWP::|\bcurl_exec\b|XMLHttpRequest|\bhttps?://"
)
_SHELLISH = re.compile(
    r"/bin/(?:ba|z)?sh\b|['\"](?:ba|z)?sh['\"]|\bdup2\b|cmd\.exe|\bspawn\s*\(\s*['\"](?:/bin/)?(?:ba)?sh"
)
_SECRET_ENV = re.compile(
    r"(?:process\.env|ENV|\$ENV|getenv)\s*[\[.({]\s*['\"]?\w*(?:KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL)\w*",
    re.I,
)
_SECRET_FILE = re.compile(r"\.ssh/|id_rsa|id_ed25519|\.aws/credentials|\.netrc|\.env\b|/etc/shadow")


def _unescape(body: str) -> str:
    return re.sub(r"\\(.)", r"\1", body)


def code_effects(code: str, lang: str) -> list[Effect]:
    """Effects of node/perl/ruby/php/lua code, by literal extraction."""
    if lang == "python":
        return python_effects(code)
    if lang == "awk":
        return awk_effects(code)
    effects: list[Effect] = []
    if _SOCKETISH.search(code):
        if _SHELLISH.search(code):
            effects.append(
                Effect(
                    "block",
                    "connects a shell to a network socket (remote shell)",
                    rule="reverse-shell",
                )
            )
        if _SECRET_ENV.search(code) or _SECRET_FILE.search(code):
            effects.append(
                Effect("block", "sends secrets over the network", rule="secret-to-network")
            )
    if _FORK_LOOP.search(code):
        effects.append(Effect("block", "forks processes in a loop (fork bomb)", rule="fork-bomb"))
    if _EVAL_FETCH.search(code) and _FETCHY.search(code):
        effects.append(
            Effect("block", "executes code it downloads or decodes", rule="fetch-to-exec")
        )
    pattern = _JS_SPAWN if lang == "node" else _PERLISH_SPAWN
    for m in pattern.finditer(code):
        text = _unescape(m.group("body"))
        extra = m.groupdict().get("args")
        if extra:
            text = shlex.join([text, *(_unescape(x.group(2)) for x in _LIST_STR.finditer(extra))])
        effects.append(Effect("shell", text))
    if lang in ("perl", "ruby", "php"):
        effects.extend(Effect("shell", _unescape(m.group(1))) for m in _BACKTICK.finditer(code))
        effects.extend(Effect("shell", m.group(2)) for m in _QX.finditer(code))
    for m in _DELETE_CALL.finditer(code):
        fn = m.group("fn")
        effects.append(
            Effect(
                "delete",
                m.group("path"),
                fn in ("rm_rf", "rm_r", "rmtree", "remove_dir_all", "rimraf")
                or "recursive" in code,
            )
        )
    return effects


# --- awk --------------------------------------------------------------------------------------

_AWK_SYSTEM = re.compile(r"\bsystem\s*\(\s*(\"(?:\\.|[^\"\\])*\")?")
_AWK_PIPE_FROM = re.compile(r"(\"(?:\\.|[^\"\\])*\")?\s*\|\s*getline")
_AWK_PIPE_TO = re.compile(r"\bprintf?\b[^;{}\n]*?\|&?\s*(\"(?:\\.|[^\"\\])*\")?")
_AWK_WRITE = re.compile(r"\bprintf?\b[^;{}\n]*?>>?\s*(\"(?:\\.|[^\"\\])*\")?")


def _awk_str(literal: str) -> str:
    return re.sub(r"\\(.)", r"\1", literal[1:-1])


def awk_effects(program: str) -> list[Effect]:
    """Effects of an awk program: ``system()``, pipes to and from commands, file output."""
    effects: list[Effect] = []
    for regex, what in (
        (_AWK_SYSTEM, "system()"),
        (_AWK_PIPE_FROM, "a command piped into getline"),
        (_AWK_PIPE_TO, "print piped to a command"),
    ):
        for m in regex.finditer(program):
            literal = m.group(1)
            if literal is None:
                effects.append(
                    Effect("confirm", f"awk runs {what} built at run time", rule="awk-command")
                )
            else:
                effects.append(Effect("shell", _awk_str(literal)))
    for m in _AWK_WRITE.finditer(program):
        literal = m.group(1)
        if literal is None:
            effects.append(
                Effect("confirm", "awk writes to a file named at run time", rule="awk-write")
            )
        else:
            effects.append(Effect("write", _awk_str(literal)))
    return effects
