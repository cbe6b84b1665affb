"""Peeling wrappers: commands that run another command (sudo, env, timeout, xargs, sh -c, eval,
python -c...).

One job: given an `Invocation` whose current program is a wrapper, find the inner command (return
its index in ``inv.words``), or hand code to the analyzer and report `DONE`. `peel` returns None
when the program is not a wrapper. Privilege wrappers block; the inner command is still analysed
so the explanation names it.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from oropendola_ls.safety.invocation import DECODE, FETCH, Invocation
from oropendola_ls.safety.shell_ast import Word
from oropendola_ls.safety.targets import basename

__all__ = ["DONE", "INTERPRETERS", "SHELLS", "WRAPPERS", "peel"]

DONE = -1

SHELLS = frozenset(
    {
        "sh",
        "bash",
        "zsh",
        "dash",
        "ksh",
        "ash",
        "mksh",
        "yash",
        "rbash",
        "fish",
        "pdksh",
        "csh",
        "tcsh",
    }
)
_PYTHON_RE = re.compile(r"^(?:python|pypy)(?:[23](?:\.\d+)?)?[mtw]?$")
INTERPRETERS = frozenset(
    {
        "node",
        "nodejs",
        "deno",
        "bun",
        "perl",
        "ruby",
        "php",
        "lua",
        "luajit",
        "Rscript",
        "R",
        "osascript",
        "pwsh",
        "powershell",
        "tclsh",
        "wish",
        "jshell",
        "irb",
        "ts-node",
        "tsx",
        "python",
        "python2",
        "python3",
        "pypy",
        "pypy3",
    }
)
_ASSIGN_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")


def is_python(name: str) -> bool:
    return _PYTHON_RE.match(name) is not None


def _skip(
    inv: Invocation, i: int, short_val: str = "", long_val: frozenset[str] = frozenset()
) -> int:
    """Skip options from ``words[i]``; return the index of the first operand."""
    words = inv.words
    n = len(words)
    while i < n:
        v = words[i].value
        if v is None:
            return i
        if v == "--":
            return i + 1
        if v.startswith("--") and len(v) > 2:
            i += 2 if ("=" not in v and v in long_val) else 1
            continue
        if v.startswith("-") and len(v) > 1:
            takes = False
            for j in range(1, len(v)):
                if v[j] in short_val:
                    takes = j == len(v) - 1
                    break
            i += 2 if takes else 1
            continue
        return i
    return i


def _inner_or_done(inv: Invocation, i: int, none_why: str = "") -> int:
    if i < len(inv.words):
        return i
    if none_why:
        inv.read_only(none_why)
    else:
        inv.positive = True
    return DONE


def _dynamic_code(inv: Invocation, word: Word, what: str) -> None:
    if word.sub_flow & (FETCH | DECODE):
        inv.block("fetch-to-exec", f"runs {what} produced by a download or decoder")
    else:
        inv.confirm("dynamic-code", f"runs {what} that is only known at run time", lowerable=False)


# --- privilege ------------------------------------------------------------------------------

_SUDO_VAL = frozenset(
    {
        "--user",
        "--group",
        "--prompt",
        "--close-from",
        "--host",
        "--chdir",
        "--role",
        "--type",
        "--command-timeout",
        "--other-user",
        "--chroot",
    }
)


def _sudo(inv: Invocation) -> int:
    inv.block("privilege-escalation", f"runs with elevated privileges ({inv.name})")
    i = _skip(inv, inv.start + 1, "ugpCDrtTUhR", _SUDO_VAL)
    words = inv.words
    while i < len(words) and words[i].value is not None and _ASSIGN_RE.match(words[i].value or ""):
        value = words[i].value or ""
        name, _, val = value.partition("=")
        inv.engine.check_assignment(inv, name, val, words[i])
        i += 1
    return _inner_or_done(inv, i)


def _su(inv: Invocation) -> int:
    inv.block("privilege-escalation", "runs as another user (su)")
    words = inv.words
    i = inv.start + 1
    while i < len(words):
        v = words[i].value
        if v in ("-c", "--command") and i + 1 < len(words):
            w = words[i + 1]
            if w.value is not None:
                inv.engine.nested_script(inv, w.value, w)
            else:
                _dynamic_code(inv, w, "a command")
            return DONE
        if v is not None and v.startswith("--command="):
            inv.engine.nested_script(inv, v.split("=", 1)[1], words[i])
            return DONE
        i += 1
    inv.positive = True
    return DONE


def _privileged_confirm(inv: Invocation) -> int:
    inv.confirm(
        "privileged-wrapper",
        f"{inv.name} changes the root, namespaces or service context",
        "high",
        lowerable=False,
    )
    i = _skip(
        inv,
        inv.start + 1,
        "pEMHutgSw",
        frozenset(
            {
                "--property",
                "--setenv",
                "--unit",
                "--description",
                "--machine",
                "--host",
                "--uid",
                "--gid",
                "--nice",
                "--working-directory",
                "--userspec",
                "--groups",
                "--target",
                "--slice",
            }
        ),
    )
    if inv.name == "chroot" and i < len(inv.words):
        i += 1  # NEWROOT
    return _inner_or_done(inv, i)


# --- environment and scheduling wrappers ----------------------------------------------------


def _env(inv: Invocation) -> int:
    words = inv.words
    i = inv.start + 1
    n = len(words)
    while i < n:
        v = words[i].value
        if v is None:
            break
        if v == "--":
            i += 1
            break
        if v in ("-u", "--unset", "-P"):
            i += 2
            continue
        if v in ("-C", "--chdir"):
            if i + 1 < n:
                inv.cwd = _chdir(inv, words[i + 1])
            i += 2
            continue
        if v.startswith("--chdir="):
            inv.cwd = _chdir(inv, Word.synthetic(v.split("=", 1)[1]))
            i += 1
            continue
        if v in ("-S", "--split-string") or v.startswith(("--split-string=", "-S")):
            if v in ("-S", "--split-string"):
                script_word = words[i + 1] if i + 1 < n else None
                rest = words[i + 2 :]
            else:
                raw = v.split("=", 1)[1] if v.startswith("--") else v[2:]
                script_word = Word.synthetic(raw, words[i].start, words[i].end)
                rest = words[i + 1 :]
            if script_word is None:
                return DONE
            parts = [script_word.value, *(w.value for w in rest)]
            if any(p is None for p in parts):
                _dynamic_code(inv, script_word, "a split string")
            else:
                inv.engine.nested_script(
                    inv, " ".join(p for p in parts if p is not None), script_word
                )
                inv.positive = True
            return DONE
        if v.startswith("-") and len(v) > 1:
            i += 1
            continue
        if _ASSIGN_RE.match(v):
            name, _, val = v.partition("=")
            inv.engine.check_assignment(inv, name, val, words[i])
            i += 1
            continue
        break
    if i >= n:
        from oropendola_ls.safety.invocation import SECRET

        inv.out |= SECRET
        inv.confirm(
            "prints-environment", "prints the whole environment, secrets included", lowerable=False
        )
        return DONE
    return i


def _chdir(inv: Invocation, word: Word) -> str | None:
    from oropendola_ls.safety.targets import resolve

    if word.value is None:
        return None
    return resolve(word.value, inv.cwd).path


def _timeout(inv: Invocation) -> int:
    i = _skip(inv, inv.start + 1, "sk", frozenset({"--signal", "--kill-after"}))
    return _inner_or_done(inv, i + 1)  # skip DURATION


def _simple(
    short_val: str = "", long_val: frozenset[str] = frozenset()
) -> Callable[[Invocation], int]:
    def peel_simple(inv: Invocation) -> int:
        return _inner_or_done(inv, _skip(inv, inv.start + 1, short_val, long_val))

    return peel_simple


def _time(inv: Invocation) -> int:
    words = inv.words
    i = inv.start + 1
    while i < len(words):
        v = words[i].value
        if v in ("-o", "--output") and i + 1 < len(words):
            inv.engine.judge_write(inv, words[i + 1], "time -o")
            i += 2
            continue
        if v in ("-f", "--format"):
            i += 2
            continue
        if v is not None and v.startswith("-") and len(v) > 1:
            i += 1
            continue
        break
    return _inner_or_done(inv, i)


def _command(inv: Invocation) -> int:
    words = inv.words
    i = inv.start + 1
    while i < len(words) and (words[i].value or "").startswith("-"):
        if words[i].value in ("-v", "-V", "-pv", "-vp", "-pV"):
            inv.read_only(f"{inv.name} -v only looks a command up")
            return DONE
        i += 1
    return _inner_or_done(inv, i)


def _exec(inv: Invocation) -> int:
    i = _skip(inv, inv.start + 1, "a")
    return _inner_or_done(inv, i, "exec without a command only applies redirections")


def _positional_then_command(short_val: str) -> Callable[[Invocation], int]:
    """``chrt PRIO cmd``, ``taskset MASK cmd``, ``flock FILE cmd``."""

    def peel_positional(inv: Invocation) -> int:
        words = inv.words
        i = _skip(inv, inv.start + 1, short_val)
        if i < len(words) and inv.name == "flock" and words[i].value is not None:
            i += 1
            if i < len(words) and words[i].value in ("-c", "--command"):
                if i + 1 < len(words):
                    w = words[i + 1]
                    if w.value is None:
                        _dynamic_code(inv, w, "a command")
                    else:
                        inv.engine.nested_script(inv, w.value, w)
                inv.positive = True
                return DONE
            return _inner_or_done(inv, i)
        if any((w.value or "") in ("-p", "--pid") for w in words[inv.start + 1 : i]):
            inv.confirm("process-attributes", "changes attributes of a running process")
            return DONE
        return _inner_or_done(inv, i + 1)

    return peel_positional


_XARGS_VAL = "IndPaLsEe"
_XARGS_LONG = frozenset(
    {
        "--max-args",
        "--delimiter",
        "--arg-file",
        "--replace",
        "--max-procs",
        "--max-lines",
        "--max-chars",
        "--eof",
        "--process-slot-var",
    }
)


def _xargs(inv: Invocation) -> int:
    words = inv.words
    i = inv.start + 1
    replace: str | None = None
    while i < len(words):
        v = words[i].value
        if v is None or not v.startswith("-") or v == "-":
            break
        if v == "--":
            i += 1
            break
        if v.startswith("--"):
            if v.startswith("--replace"):
                replace = v.split("=", 1)[1] if "=" in v else "{}"
            i += 2 if ("=" not in v and v in _XARGS_LONG) else 1
            continue
        if v.startswith("-I"):
            if len(v) > 2:
                replace = v[2:]
                i += 1
            else:
                replace = words[i + 1].value if i + 1 < len(words) else None
                i += 2
            continue
        if v.startswith("-i"):
            replace = v[2:] or "{}"
            i += 1
            continue
        if v[1] in "eEl" and len(v) > 2:  # optional attached values
            i += 1
            continue
        i += 2 if (len(v) == 2 and v[1] in _XARGS_VAL) else 1
    if i >= len(words):
        inv.read_only("xargs without a command runs echo")
        return DONE
    stdin = inv.stdin
    literal = stdin.literal if stdin is not None and not stdin.out & (FETCH | DECODE) else None
    if replace:
        line = (
            next((x for x in (literal or "").splitlines() if x.strip()), None) if literal else None
        )
        for k in range(i, len(words)):
            w = words[k]
            if w.value is not None and replace in w.value:
                value = w.value.replace(replace, line) if line is not None else None
                words[k] = Word(value, w.node, w.start, w.end)
        inv.extra_unknown = literal is None
        return i
    if literal is not None:
        words.extend(
            Word.synthetic(item, inv.words[inv.start].start, inv.words[inv.start].end)
            for item in literal.split()[:64]
        )
        return i
    inv.extra_unknown = True
    return i


def _watch(inv: Invocation) -> int:
    words = inv.words
    i = inv.start + 1
    direct = False
    while i < len(words):
        v = words[i].value
        if v is None or not v.startswith("-"):
            break
        if v in ("-x", "--exec"):
            direct = True
        i += 2 if v in ("-n", "--interval", "-q", "--equexit") else 1
    if i >= len(words):
        inv.positive = True
        return DONE
    if direct:
        return i
    parts = [w.value for w in words[i:]]
    if any(p is None for p in parts):
        _dynamic_code(inv, words[i], "a command")
    else:
        inv.engine.nested_script(inv, " ".join(p for p in parts if p is not None), words[i])
    inv.positive = True
    return DONE


def _busybox(inv: Invocation) -> int:
    i = inv.start + 1
    if i < len(inv.words) and (inv.words[i].value or "-").startswith("-"):
        inv.read_only("busybox listing")
        return DONE
    return _inner_or_done(inv, i, "busybox without an applet lists applets")


# --- code runners ---------------------------------------------------------------------------


def _shell(inv: Invocation) -> int:
    words = inv.words
    i = inv.start + 1
    n = len(words)
    c_flag = stdin_flag = False
    while i < n:
        v = words[i].value
        if v is None:
            break
        if v == "--":
            i += 1
            break
        if v == "-":
            stdin_flag = True
            break
        if v.startswith("--"):
            if v in ("--version", "--help"):
                inv.read_only(f"{inv.name} {v} prints information")
                return DONE
            i += 2 if v in ("--rcfile", "--init-file") else 1
            continue
        if v[0] in "-+" and len(v) > 1:
            letters = v[1:]
            if "c" in letters and v[0] == "-":
                c_flag = True
            if "s" in letters:
                stdin_flag = True
            i += 2 if ("o" in letters or "O" in letters) else 1
            continue
        break
    operand = words[i] if i < n else None
    if c_flag:
        if operand is None:
            inv.confirm("shell-no-script", f"{inv.name} -c without a script", lowerable=False)
        elif operand.value is None:
            _dynamic_code(inv, operand, "a shell script")
        else:
            inv.engine.nested_script(inv, operand.value, operand)
            inv.positive = True
        return DONE
    if operand is not None and not stdin_flag:
        _script_file(inv, operand, "shell script")
        return DONE
    inv.exec_lang = "shell"
    return DONE


def _script_file(inv: Invocation, operand: Word, what: str) -> None:
    if operand.node is not None and operand.node.type == "process_substitution":
        if operand.sub_flow & (FETCH | DECODE):
            inv.block("fetch-to-exec", f"runs a {what} streamed from a download")
        else:
            inv.confirm(
                "script-substitution",
                f"runs a {what} produced by a process substitution",
                lowerable=False,
            )
        return
    if operand.value is None:
        _dynamic_code(inv, operand, f"a {what}")
        return
    if inv.engine.downloaded(inv.target(operand).path):
        inv.block(
            "download-then-execute", f"runs {operand.value}, downloaded earlier in this command"
        )
        return
    inv.confirm("script-file", f"runs the {what} {operand.value}; the gate cannot see its code")


def _code_runner(
    code_flags: frozenset[str],
    value_flags: frozenset[str],
    lang: str,
    version_flags: frozenset[str] = frozenset({"-v", "--version"}),
) -> Callable[[Invocation], int]:
    """Interpreters: inline code flags, script operand, or stdin."""

    def peel_code(inv: Invocation) -> int:
        words = inv.words
        i = inv.start + 1
        n = len(words)
        while i < n:
            v = words[i].value
            if v is None:
                _script_file(inv, words[i], f"{inv.name} script")
                return DONE
            if v in version_flags or v in ("-h", "--help"):
                inv.read_only(f"{inv.name} {v} prints information")
                return DONE
            head = v.split("=", 1)[0]
            if v in code_flags or (head in code_flags and head.startswith("--") and "=" in v):
                if "=" in v and v.startswith("--"):
                    code_word: Word | None = Word.synthetic(
                        v.split("=", 1)[1], words[i].start, words[i].end
                    )
                else:
                    code_word = words[i + 1] if i + 1 < n else None
                _inline(inv, code_word, lang)
                return DONE
            if (
                lang == "perl"
                and v.startswith("-")
                and not v.startswith("--")
                and v[-1] in "eE"
                and len(v) > 2
            ):
                if "i" in v:
                    inv.confirm("in-place-edit", "perl -i edits files in place")
                _inline(inv, words[i + 1] if i + 1 < n else None, lang)
                return DONE
            if v == "-":
                break
            if v.startswith("-"):
                if lang == "perl" and v.startswith("-i"):
                    inv.confirm("in-place-edit", "perl -i edits files in place")
                i += 2 if v in value_flags else 1
                continue
            _script_file(inv, words[i], f"{inv.name} script")
            return DONE
        inv.exec_lang = lang
        return DONE

    return peel_code


def _inline(inv: Invocation, code_word: Word | None, lang: str) -> None:
    if code_word is None:
        inv.confirm("inline-code", f"{inv.name} with an empty inline program", lowerable=False)
        return
    inv.confirm("inline-code", f"runs inline {lang} code", lowerable=False)
    if code_word.value is None:
        _dynamic_code(inv, code_word, f"{lang} code")
        return
    inv.engine.nested_script(inv, code_word.value, code_word, lang)


_PY_MODULE_PROGRAMS = frozenset(
    {
        "pip",
        "pip3",
        "pytest",
        "mypy",
        "ruff",
        "black",
        "flake8",
        "pylint",
        "json.tool",
        "venv",
        "http.server",
        "pydoc",
        "unittest",
        "isort",
        "build",
        "twine",
        "uv",
        "poetry",
        "tox",
        "coverage",
        "timeit",
        "site",
        "tabnanny",
        "py_compile",
        "compileall",
        "zipfile",
        "tarfile",
        "this",
        "ensurepip",
        "virtualenv",
        "pipx",
        "doctest",
    }
)


def _python(inv: Invocation) -> int:
    words = inv.words
    i = inv.start + 1
    n = len(words)
    while i < n:
        v = words[i].value
        if v is None:
            _script_file(inv, words[i], "Python script")
            return DONE
        if v in ("-V", "--version", "-VV", "-h", "--help"):
            inv.read_only(f"{inv.name} {v} prints information")
            return DONE
        if v == "-":
            break
        if v.startswith("-") and not v.startswith("--"):
            letters = v[1:]
            if "c" in letters:
                tail = letters[letters.index("c") + 1 :]
                if tail:
                    _inline(inv, Word.synthetic(tail, words[i].start, words[i].end), "python")
                else:
                    _inline(inv, words[i + 1] if i + 1 < n else None, "python")
                return DONE
            if "m" in letters:
                tail = letters[letters.index("m") + 1 :]
                mod_index = i if tail else i + 1
                module = tail or (words[i + 1].value if i + 1 < n else None)
                if module is None:
                    inv.confirm(
                        "python-module",
                        "runs a Python module only known at run time",
                        lowerable=False,
                    )
                    return DONE
                if module in _PY_MODULE_PROGRAMS and not tail:
                    return mod_index
                inv.confirm("python-module", f"runs the Python module {module}")
                inv.prefix((inv.name, "-m", module))
                return DONE
            i += 2 if letters in ("W", "X", "Q") else 1
            continue
        if v.startswith("--"):
            i += 1
            continue
        _script_file(inv, words[i], "Python script")
        return DONE
    inv.exec_lang = "python"
    return DONE


def _eval(inv: Invocation) -> int:
    args = inv.args
    if not args:
        inv.positive = True
        return DONE
    parts = [w.value for w in args]
    if any(p is None for p in parts):
        flow = 0
        for w in args:
            flow |= w.sub_flow
        if flow & (FETCH | DECODE):
            inv.block("fetch-to-exec", "evaluates code produced by a download or decoder")
        else:
            inv.confirm(
                "dynamic-code", "evaluates code that is only known at run time", lowerable=False
            )
        return DONE
    inv.engine.nested_script(inv, " ".join(p for p in parts if p is not None), args[0])
    inv.positive = True
    return DONE


def _bun(inv: Invocation) -> int | None:
    args = inv.values
    if args and args[0] in ("-e", "--eval", "-p", "--print", "-v", "--version"):
        return _code_runner(frozenset({"-e", "--eval", "-p", "--print"}), frozenset(), "node")(inv)
    return None  # package-manager use: the program rule handles it


def _deno(inv: Invocation) -> int | None:
    args = inv.values
    if args and args[0] == "eval":
        _inline(inv, inv.args[1] if len(args) > 1 else None, "node")
        return DONE
    if args and args[0] in ("-v", "--version", "-V"):
        inv.read_only("deno --version prints information")
        return DONE
    return None


_NODE = _code_runner(
    frozenset({"-e", "--eval", "-p", "--print"}),
    frozenset({"-r", "--require", "--import", "--loader", "-C", "--conditions"}),
    "node",
)
_PERL = _code_runner(frozenset({"-e", "-E"}), frozenset({"-I", "-M", "-m", "-x"}), "perl")
_RUBY = _code_runner(frozenset({"-e"}), frozenset({"-r", "-I", "-C", "-E"}), "ruby")
_PHP = _code_runner(frozenset({"-r"}), frozenset({"-c", "-d", "-z"}), "php")
_LUA = _code_runner(frozenset({"-e"}), frozenset({"-l"}), "lua", frozenset({"-v"}))
_OTHER_CODE = _code_runner(
    frozenset({"-e", "--expr", "-c", "-Command", "-command", "-EncodedCommand", "-ec"}),
    frozenset(),
    "opaque",
    frozenset({"--version", "-v", "-version"}),
)

WRAPPERS: dict[str, Callable[[Invocation], int | None]] = {
    "sudo": _sudo,
    "doas": _simple("uC"),
    "pkexec": _simple("", frozenset({"--user"})),
    "run0": _simple(
        "uDg",
        frozenset(
            {
                "--user",
                "--group",
                "--chdir",
                "--unit",
                "--property",
                "--nice",
                "--setenv",
                "--machine",
                "--description",
                "--slice",
            }
        ),
    ),
    "su": _su,
    "env": _env,
    "timeout": _timeout,
    "nice": _simple("n", frozenset({"--adjustment"})),
    "nohup": _simple(),
    "stdbuf": _simple("ioe", frozenset({"--input", "--output", "--error"})),
    "time": _time,
    "command": _command,
    "builtin": _simple(),
    "exec": _exec,
    "noglob": _simple(),
    "coproc": _simple(),
    "nocorrect": _simple(),
    "ionice": _simple("cnpt", frozenset({"--class", "--classdata", "--pid", "--pgid", "--uid"})),
    "chrt": _positional_then_command("TPD"),
    "taskset": _positional_then_command("c"),
    "setsid": _simple(),
    "flock": _positional_then_command("wEcFo"),
    "unbuffer": _simple(),
    "caffeinate": _simple("tw"),
    "catchsegv": _simple(),
    "strace": _simple("oepsuIbPXaE"),
    "ltrace": _simple("oepsuIbnaA"),
    "chroot": _privileged_confirm,
    "nsenter": _privileged_confirm,
    "unshare": _privileged_confirm,
    "systemd-run": _privileged_confirm,
    "xargs": _xargs,
    "watch": _watch,
    "busybox": _busybox,
    "eval": _eval,
    "node": _NODE,
    "nodejs": _NODE,
    "bun": _bun,
    "deno": _deno,
    "perl": _PERL,
    "ruby": _RUBY,
    "php": _PHP,
    "lua": _LUA,
    "luajit": _LUA,
    "Rscript": _OTHER_CODE,
    "osascript": _OTHER_CODE,
    "pwsh": _OTHER_CODE,
    "powershell": _OTHER_CODE,
    "tclsh": _OTHER_CODE,
}
for _shell_name in SHELLS:
    WRAPPERS[_shell_name] = _shell
_PRIVILEGE = frozenset({"sudo", "doas", "pkexec", "run0", "su"})


def peel(inv: Invocation) -> int | None:
    """Peel one wrapper level. Returns the inner command's index, `DONE`, or None."""
    name = inv.name
    handler = WRAPPERS.get(name)
    if handler is None:
        if name.startswith(("python", "pypy")) and is_python(name):
            return _python(inv)
        return None
    if name in _PRIVILEGE and name != "sudo" and name != "su":
        inv.block("privilege-escalation", f"runs with elevated privileges ({name})")
    return handler(inv)


def program_name(value: str) -> str:
    return basename(value)
