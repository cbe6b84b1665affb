"""initialize / initialized / configuration / shutdown, and the parent-process watchdog."""

from __future__ import annotations

import asyncio
import logging
import os
import uuid
from typing import TYPE_CHECKING, Any

from lsprotocol import types

from oropendola_ls.client_support import ClientSupport
from oropendola_ls.server import OropendolaServer, ServerNotReadyError
from oropendola_ls.settings import SECTION, environment_defaults, parse_settings

if TYPE_CHECKING:
    from oropendola_ls.account import Account

log = logging.getLogger(__name__)

WATCHDOG_INTERVAL = 5.0
SIGN_IN_HINT = "run `oropendola-ls login`, send `oropendola/signIn`, or start with --embedded"


def register(server: OropendolaServer) -> None:
    server.feature(types.INITIALIZE)(on_initialize)
    server.feature(types.INITIALIZED)(on_initialized)
    server.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)(on_did_change_configuration)
    server.feature(types.SHUTDOWN)(on_shutdown)


def on_initialize(ls: OropendolaServer, params: types.InitializeParams) -> None:
    # No I/O here: the editor waits for this answer. Settings problems are shown once the
    # client is ready to receive notifications (initialized).
    ls.init_options = params.initialization_options
    ls.client_support = ClientSupport.of(params.capabilities, params.client_info)
    log.info("client %s; %s", ls.client_support.client,
             "; ".join(f"{feature}: {path}" for feature, path in ls.client_support.paths().items()))
    ls.settings, _ = parse_settings(environment_defaults(), ls.init_options)
    ls.account_future()


async def on_initialized(ls: OropendolaServer, params: types.InitializedParams) -> None:
    if ls.process_id:
        ls.run_task(_watch_parent(ls.process_id), "parent-watchdog")
    await _load_settings(ls, None)
    if ls.client_support.configuration_registration:
        await ls.client_register_capability_async(types.RegistrationParams(registrations=[
            types.Registration(
                id=str(uuid.uuid4()), method=types.WORKSPACE_DID_CHANGE_CONFIGURATION,
                register_options={"section": SECTION},
            )
        ]))

    from oropendola_ls.account import Account
    from oropendola_ls.backend.errors import BackendError
    from oropendola_ls.backend.session import SessionStore

    account = Account(ls.settings, store=SessionStore(), embedded=ls.embedded, redactor=ls.redactor)
    try:
        await account.start()
    except (BackendError, TimeoutError, OSError) as exc:
        message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
        log.error("could not start the backend connection: %s", message)
        ls.tell(f"Oropendola could not start: {message}", types.MessageType.Error)
        ls.account_future().set_exception(
            ServerNotReadyError(f"Oropendola could not start: {message}")
        )
        return
    account.notices.append(
        lambda message: ls.tell(f"Oropendola: {message}", types.MessageType.Warning))
    ls.account = account
    ls.account_future().set_result(account)
    if ls.embedded is None:
        ls.run_task(_verify_then_start(ls), "verify-session")
    else:
        _account_ready(ls, account)


async def on_did_change_configuration(
    ls: OropendolaServer, params: types.DidChangeConfigurationParams
) -> None:
    await _load_settings(ls, params.settings)
    account = await ls.get_account()
    backend_changed = await account.apply_settings(ls.settings)
    if backend_changed:
        log.info("backend settings changed: now %s", account.status()["backend"]["url"])
    ls.run_task(_after_settings_change(ls, backend_changed), "settings-changed")


async def _after_settings_change(ls: OropendolaServer, backend_changed: bool) -> None:
    if backend_changed:
        await _verify_session(ls)
    if ls.realtime_feature is not None:
        await ls.realtime_feature.apply_settings(ls.settings, backend_changed=backend_changed)


async def on_shutdown(ls: OropendolaServer, params: None) -> None:
    if ls.realtime_feature is not None:
        await ls.realtime_feature.close()
    await ls.cancel_tasks()
    if ls.account is not None:
        await ls.account.aclose()
    if ls.embedded is not None:
        await asyncio.to_thread(ls.embedded.stop)


async def _load_settings(ls: OropendolaServer, pushed: Any) -> None:
    """Merge initializationOptions with the client's configuration (pulled when it can)."""
    current = pushed
    if ls.client_support.configuration:
        try:
            (current,) = await ls.workspace_configuration_async(types.ConfigurationParams(
                items=[types.ConfigurationItem(section=SECTION)]
            ))
        except Exception as exc:  # a client that fails the request keeps the pushed settings
            log.warning("workspace/configuration failed: %s", exc)
    ls.settings, problems = parse_settings(environment_defaults(), ls.init_options, current)
    ls.settings_loaded.set()
    ls.report_settings_problems(problems)


async def _verify_then_start(ls: OropendolaServer) -> None:
    await _verify_session(ls)
    if ls.account is not None:
        _account_ready(ls, ls.account)


def _account_ready(ls: OropendolaServer, account: Account) -> None:
    for hook in ls.ready_hooks:
        try:
            hook(account)
        except Exception:
            log.exception("starting %s failed", getattr(hook, "__qualname__", hook))


async def _verify_session(ls: OropendolaServer) -> None:
    account = await ls.get_account()
    state = await account.verify()
    url = account.status()["backend"]["url"]
    if state == "expired":
        ls.tell(
            f"Your Oropendola session at {url} has expired: sign in again ({SIGN_IN_HINT}).",
            types.MessageType.Warning,
        )
    elif state == "signed_out":
        ls.tell(f"Oropendola: not signed in to {url}; {SIGN_IN_HINT}.", types.MessageType.Info)
    elif state == "unverified":
        ls.tell(
            f"Oropendola could not check your session: {account.last_error}",
            types.MessageType.Warning,
        )


async def _watch_parent(pid: int) -> None:
    """Exit when the editor that started us is gone (pygls does not watch processId)."""
    while True:
        await asyncio.sleep(WATCHDOG_INTERVAL)
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            log.warning("editor process %s is gone; exiting", pid)
            os._exit(0)
        except PermissionError:
            pass  # exists, owned by someone else
