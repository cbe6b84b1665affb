"""Command line: argument parsing and dispatch only. The work lives in the modules it calls.

    oropendola-ls                         LSP server on stdio
    oropendola-ls --tcp --host H --port P LSP server on TCP
    oropendola-ls --embedded              LSP server on an in-process reference backend
    oropendola-ls login | logout | status sign in from a terminal
    oropendola-ls check-command [CMD ...] the command gate, as a dry run
    oropendola-ls backend [adduser ...]   the reference backend
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import os
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from oropendola_ls import __version__
from oropendola_ls.settings import SERVER_URL_ENV

if TYPE_CHECKING:
    from oropendola_ls.account import Account

DEFAULT_TCP_PORT = 2087


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="oropendola-ls",
        description="Oropendola AI language server. With no command, serves LSP on stdio.",
    )
    parser.add_argument("--version", action="version", version=f"oropendola-ls {__version__}")
    parser.add_argument("--tcp", action="store_true", help="serve LSP on TCP instead of stdio")
    parser.add_argument("--host", default="127.0.0.1", help="TCP host (default: 127.0.0.1)")
    parser.add_argument(
        "--port", type=int, default=DEFAULT_TCP_PORT, help=f"TCP port (default: {DEFAULT_TCP_PORT})"
    )
    parser.add_argument(
        "--embedded", action="store_true",
        help="start the reference backend in-process on loopback and sign in as a local user",
    )
    parser.add_argument(
        "--data", type=Path, default=None,
        help="data directory of the embedded backend (default: the user data directory)",
    )
    _logging_arguments(parser, top=True)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    login = commands.add_parser(
        "login", help="sign in and store the session",
        description="Sign in to an Oropendola backend and store the session (mode 0600) in the "
        "user config directory. Prompts for the password unless --password-stdin, --api-key "
        "or --browser is given.",
    )
    _server_argument(login)
    login.add_argument("--profile", choices=("auto", "oropendola", "oropendola_ai"),
                       default=None,
                       help="endpoint names the backend answers (default: auto, found out after "
                       "sign-in)")
    login.add_argument("--browser", action="store_true",
                       help="sign in in a web browser (the published app's sign-in page): "
                       "prints the page's URL, opens it, and waits up to 5 minutes")
    login.add_argument("--no-open", action="store_true",
                       help="with --browser: only print the URL, do not start a browser")
    login.add_argument("--username", "-u", help="email address (prompted when missing)")
    login.add_argument("--password-stdin", action="store_true",
                       help="read the password from the first line of stdin")
    login.add_argument("--api-key", help="sign in with an API key instead of a password")
    login.add_argument("--api-secret",
                       help="the API secret (prompted when --api-key is given without it)")
    _logging_arguments(login)

    logout = commands.add_parser(
        "logout", help="sign out and delete the stored session",
        description="Call the backend's logout and delete the stored session.",
    )
    _server_argument(logout)
    _logging_arguments(logout)

    status = commands.add_parser(
        "status", help="show who is signed in, where, and whether the session is valid",
        description="Show the stored sessions and check each with the backend.",
    )
    status.add_argument("--server", help="only this backend URL")
    status.add_argument("--json", action="store_true", help="print JSON")
    _logging_arguments(status)

    check = commands.add_parser(
        "check-command", help="run the command gate on commands; executes nothing",
        description="Run the command gate on each CMD, or on each line of stdin (each "
        "NUL-separated command with -0), and print the decision. Executes nothing.",
    )
    check.add_argument("commands", nargs="*", metavar="CMD", help="commands to check")
    check.add_argument("--json", action="store_true",
                       help='one JSON object per command: {"command", "decision", "risk", '
                       '"score", "reasons"}')
    check.add_argument("-0", "--null", action="store_true",
                       help="read NUL-separated commands from stdin (commands with newlines)")
    _logging_arguments(check)

    backend = commands.add_parser(
        "backend", help="run the reference backend (a local Frappe-compatible server)",
        description="Run the reference backend. Prints 'Listening on http://HOST:PORT' once it "
        "accepts connections.",
    )
    backend.add_argument("--host", default="127.0.0.1", help="bind address (default: 127.0.0.1)")
    backend.add_argument("--port", type=int, default=0, help="port (default: 0, a free port)")
    _data_argument(backend)
    backend.add_argument(
        "--profile", action="append", choices=("oropendola", "oropendola_ai"), dest="profiles",
        help="answer only this profile's method names (repeatable; default: both)",
    )
    backend.add_argument("--session-expiry", type=float, default=240 * 3600, metavar="SECONDS",
                         help="session lifetime since last use (default: 864000, Frappe's 240 h)")
    backend.add_argument("--stream-interval", type=_stream_interval, default=0.01,
                         metavar="SECONDS",
                         help="pause between the ai_progress text deltas of a chat answer, "
                         "0 to 10 (default: 0.01)")
    backend.add_argument(
        "--control", action="store_true",
        help="serve POST /_reference/control/<action> to loopback clients, for tests and "
        "benches: realtime/drop, realtime/stop, realtime/start, realtime/status, emit, "
        "chat/pace, chat/hold, agent/fail (see oropendola_ls/reference_backend/control.py)",
    )
    backend.add_argument("--auth-poll-interval", type=_auth_poll_interval, default=2.0,
                         metavar="SECONDS",
                         help="poll_interval the browser sign-in (initiate_auth) asks editors "
                         "for, above 0 and at most 60 (default: 2, the published app's)")
    backend.add_argument("--auth-request-lifetime", type=_auth_request_lifetime, default=300.0,
                         metavar="SECONDS",
                         help="how long a browser sign-in request stays open (default: 300, "
                         "the published app's 5 minutes)")
    backend.add_argument(
        "--llm-base-url", metavar="URL",
        help="answer chat with a model behind this OpenAI-compatible API, e.g. "
        "http://127.0.0.1:11434/v1 (Ollama), http://127.0.0.1:8080/v1 (llama.cpp), "
        "http://127.0.0.1:8000/v1 (vLLM); https unless loopback (default: "
        "$OROPENDOLA_LLM_BASE_URL, else the offline engine)",
    )
    backend.add_argument("--llm-model", metavar="NAME",
                         help="the model to ask (default: $OROPENDOLA_LLM_MODEL)")
    backend.add_argument(
        "--llm-api-key-env", metavar="VAR",
        help="environment variable that holds the model API key, sent as a Bearer token "
        "(default: OROPENDOLA_LLM_API_KEY; the key is never taken from the command line)",
    )
    backend.add_argument("--llm-timeout", type=float, default=None, metavar="SECONDS",
                         help="seconds to wait for the model to connect or send the next "
                         "piece of an answer (default: 120)")
    _logging_arguments(backend)
    backend_commands = backend.add_subparsers(dest="backend_command", metavar="COMMAND")
    adduser = backend_commands.add_parser(
        "adduser", help="create a user; the password is read from stdin",
        description="Create a user of the reference backend. The password is read from stdin "
        "(prompted on a terminal).",
    )
    adduser.add_argument("email")
    adduser.add_argument("--full-name", help="display name (default: the email's local part)")
    adduser.add_argument("--api-key", action="store_true",
                         help="also generate an API key and secret and print them once")
    _data_argument(adduser)
    expire = backend_commands.add_parser(
        "expire-sessions", help="end the sessions of a user (or of everyone)",
        description="Expire sessions as Frappe does when they time out: the next request that "
        "presents one gets session_expired.",
    )
    expire.add_argument("email", nargs="?", help="only this user's sessions")
    _data_argument(expire)
    return parser


def _logging_arguments(parser: argparse.ArgumentParser, *, top: bool = False) -> None:
    # Subcommands must not reset what was given before them (`oropendola-ls -v login`).
    parser.add_argument("-v", "--verbose", action="count", default=0 if top else argparse.SUPPRESS,
                        help="log more (-v info, -vv debug, -vvv protocol traffic)")
    parser.add_argument("--log-file", type=Path, default=None if top else argparse.SUPPRESS,
                        help="log to this file instead of stderr")


def _server_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--server", default=None,
        help=f"backend URL (default: ${SERVER_URL_ENV} or https://oropendola.ai)",
    )


def _auth_poll_interval(text: str) -> float:
    from oropendola_ls.reference_backend.context import check_auth_timing

    try:
        return check_auth_timing(float(text), 300.0)[0]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _auth_request_lifetime(text: str) -> float:
    from oropendola_ls.reference_backend.context import check_auth_timing

    try:
        return check_auth_timing(2.0, float(text))[1]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _stream_interval(text: str) -> float:
    from oropendola_ls.reference_backend.context import check_stream_interval

    try:
        return check_stream_interval(float(text))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _data_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", type=Path, default=argparse.SUPPRESS,
                        help="data directory (default: the user data directory)")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from oropendola_ls.backend.redact import RedactingFilter
    from oropendola_ls.log import setup_logging

    redactor = RedactingFilter()
    setup_logging(args.verbose, args.log_file, redactor)
    try:
        if args.command is None:
            return _serve(args, redactor)
        if args.command == "backend":
            return _backend(args)
        if args.command == "check-command":
            return _check_commands(args)
        if args.command == "login":
            return asyncio.run(_account_command(args, *_login_secrets(args)))
        return asyncio.run(_account_command(args))
    except KeyboardInterrupt:
        return 130


def _serve(args: argparse.Namespace, redactor: Any) -> int:
    from oropendola_ls.server import build_server

    embedded = None
    if args.embedded:
        from oropendola_ls.embedded import EmbeddedBackend

        embedded = EmbeddedBackend(_backend_data_dir(args))
        embedded.start()
    server = build_server(embedded=embedded, redactor=redactor)
    if args.tcp:
        server.start_tcp(args.host, args.port)
    else:
        server.start_io()
    if embedded is not None:
        embedded.stop()
    return 0


def _check_commands(args: argparse.Namespace) -> int:
    from oropendola_ls.safety import CommandValidator

    validator = CommandValidator()
    if args.commands:
        commands: Iterable[str] = args.commands
    elif args.null:
        commands = (c for c in sys.stdin.read().split("\0") if c.strip())
    else:
        commands = (line.rstrip("\r\n") for line in sys.stdin if line.strip())
    for command in commands:
        verdict = validator.validate(command)
        if args.json:
            print(json.dumps(verdict.to_json(), ensure_ascii=False))
            continue
        shown = command if command.isprintable() else command.encode("unicode_escape").decode()
        print(f"{verdict.decision:<8}{verdict.risk:<7}{verdict.score:>3}  {shown}")
        for reason in verdict.reasons:
            print(f"    - {reason}")
    sys.stdout.flush()
    return 0


def _backend_data_dir(args: argparse.Namespace) -> Path:
    from oropendola_ls.paths import data_dir

    data = getattr(args, "data", None)
    return Path(data) if data else data_dir() / "backend"


def _backend(args: argparse.Namespace) -> int:
    data = _backend_data_dir(args)
    if args.backend_command == "adduser":
        return _adduser(args, data)
    if args.backend_command == "expire-sessions":
        from oropendola_ls.reference_backend import Store

        count = Store(data).expire_sessions(args.email)
        print(f"Expired {count} session(s).")
        return 0
    from oropendola_ls.reference_backend import serve
    from oropendola_ls.reference_backend.chat_engines import LLMConfig, ProviderConfigError

    try:
        llm = LLMConfig.from_options(base_url=args.llm_base_url, model=args.llm_model,
                                     api_key_env=args.llm_api_key_env, timeout=args.llm_timeout,
                                     environ=os.environ)
    except ProviderConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    profiles = tuple(dict.fromkeys(args.profiles or ("oropendola", "oropendola_ai")))
    return serve(data_dir=data, host=args.host, port=args.port, profiles=profiles,
                 session_expiry=args.session_expiry, control=args.control,
                 stream_interval=args.stream_interval, llm=llm,
                 auth_poll_interval=args.auth_poll_interval,
                 auth_request_lifetime=args.auth_request_lifetime)


def _adduser(args: argparse.Namespace, data: Path) -> int:
    from oropendola_ls.reference_backend import Store

    password = _read_secret("Password: ", from_stdin=not sys.stdin.isatty())
    if not password:
        print("error: empty password; give it on stdin", file=sys.stderr)
        return 2
    store = Store(data)
    try:
        store.add_user(args.email, password, args.full_name)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"Created user {args.email} in {data}")
    if args.api_key:
        key, secret = store.generate_api_key(args.email)
        print(f"api_key: {key}\napi_secret: {secret}\n(the secret is shown only this once)")
    return 0


def _read_secret(prompt: str, *, from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return getpass.getpass(prompt)


def _server_url(args: argparse.Namespace) -> str:
    return str(args.server or os.environ.get(SERVER_URL_ENV) or "https://oropendola.ai")


async def _open_account(url: str, profile: str | None = None) -> Account:
    from oropendola_ls.account import Account
    from oropendola_ls.backend.session import SessionStore
    from oropendola_ls.settings import parse_settings

    raw: dict[str, Any] = {"serverUrl": url}
    if profile:
        raw["profile"] = profile
    settings, problems = parse_settings(raw)
    if problems:
        raise SystemExit(f"error: {problems[0]}")
    account = Account(settings, store=SessionStore())
    await account.start()
    return account


async def _account_command(args: argparse.Namespace, *login: str) -> int:
    from oropendola_ls.backend.errors import BackendError
    from oropendola_ls.backend.session import SessionStoreError

    try:
        if args.command == "login":
            return await _login(args, *login)
        if args.command == "logout":
            return await _logout(args)
        return await _status(args)
    except BackendError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 1
    except SessionStoreError as exc:  # signed in at the backend, but nothing could be kept
        print(f"error: {exc}", file=sys.stderr)
        return 1


def _login_secrets(args: argparse.Namespace) -> tuple[str, str]:
    """Ask for what `login` needs before any network I/O: (username or API key, secret)."""
    if args.browser:
        return "", ""
    if args.api_key:
        secret = args.api_secret or _read_secret("API secret: ", from_stdin=args.password_stdin)
        return args.api_key, secret
    username = args.username or input("Email: ").strip()
    return username, _read_secret("Password: ", from_stdin=args.password_stdin)


async def _login(args: argparse.Namespace, who: str, secret: str) -> int:
    if args.browser:
        return await _login_browser(args)
    if not who or not secret:
        print("error: email and password (or API key and secret) are required", file=sys.stderr)
        return 2
    account = await _open_account(_server_url(args), args.profile)
    try:
        if args.api_key:
            result = await account.sign_in_api_key(who, secret)
        else:
            result = await account.sign_in_password(who, secret)
    finally:
        await account.aclose()
    name = f" ({result.full_name})" if result.full_name else ""
    print(f"Signed in to {account.config.primary_url} as {result.user}{name}.")
    return 0


async def _login_browser(args: argparse.Namespace) -> int:
    if args.api_key or args.username or args.password_stdin:
        print("error: --browser signs in on a web page: leave out --username, --password-stdin "
              "and --api-key", file=sys.stderr)
        return 2
    account = await _open_account(_server_url(args), args.profile)

    def show(request: Any) -> None:
        url = request.login_url
        print(f"To sign in, open this page in your browser:\n\n    {url}\n", flush=True)
        if not args.no_open:
            import threading
            import webbrowser

            # A daemon thread: a browser that keeps the call waiting never holds up the exit.
            threading.Thread(target=webbrowser.open, args=(url,), daemon=True).start()
        print("Waiting for the sign-in to be completed (up to 5 minutes; Ctrl-C cancels)…",
              flush=True)

    try:
        result = await account.sign_in_browser(show)
    finally:
        await account.aclose()
    name = f" ({result.full_name})" if result.full_name else ""
    print(f"Signed in to {account.config.primary_url} as {result.user}{name}.")
    return 0


async def _logout(args: argparse.Namespace) -> int:
    url = _server_url(args)
    account = await _open_account(url)
    try:
        had_session = account.state != "signed_out"
        await account.sign_out()
    finally:
        await account.aclose()
    print(f"Signed out of {account.config.primary_url}." if had_session
          else f"No stored session for {account.config.primary_url}.")
    return 0


async def _status(args: argparse.Namespace) -> int:
    from oropendola_ls.backend.session import SessionStore

    urls = [args.server] if args.server else list(SessionStore().entries())
    reports: list[dict[str, Any]] = []
    from oropendola_ls.account import with_details

    for url in urls:
        account = await _open_account(url)
        try:
            await account.verify()
            details = await account.details()
            reports.append(with_details(account.status(), details))
        finally:
            await account.aclose()
    if args.json:
        print(json.dumps(reports, indent=2))
    elif not reports:
        print("Not signed in: no stored session. Run `oropendola-ls login`.")
    for report in [] if args.json else reports:
        where = report["backend"]["url"]
        if report["signedIn"]:
            checked = "valid" if report["session"] == "verified" else "not checked"
            extra = f" ({report['lastError']})" if report.get("lastError") else ""
            print(f"{where}: signed in as {report.get('user', '?')}, session {checked}{extra}")
            plan = report.get("subscription")
            if isinstance(plan, dict) and plan.get("error"):
                print(f"    plan: unknown ({plan['error']})")
            elif isinstance(plan, dict):
                print(f"    plan: {plan.get('plan') or 'none'} ({plan.get('status') or '?'})")
        else:
            print(f"{where}: not signed in ({report.get('lastError') or 'no session'})")
    return 0 if all(r["signedIn"] for r in reports) and reports else 1
