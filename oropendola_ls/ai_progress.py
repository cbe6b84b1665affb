"""The backend's ``ai_progress`` events: what each one means, and which request it belongs to.

`interpret` turns one payload into a `ProgressStep` (a report, a text delta, the end, or a
failure); unknown types give None and are ignored. `ProgressRouter` delivers events to the
request that owns them: by ``task_id`` (an event naming another task is never shown), else by
``conversation_id``, else, when exactly one request is waiting, to that one (the published
backend sends neither id; protocol.md §3).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any, Literal

import attrs

log = logging.getLogger(__name__)

StepKind = Literal["report", "text", "complete", "error"]

_REPORT_TYPES = frozenset({"thinking", "working", "plan", "reasoning"})
_TEXT_TYPES = frozenset({"text"})
_END_TYPES = frozenset({"complete", "completion"})


@attrs.frozen
class ProgressStep:
    kind: StepKind
    message: str = ""
    percentage: int | None = None


def _message(data: Mapping[str, Any], *keys: str) -> str:
    for key in keys:
        value = data.get(key)
        if isinstance(value, str) and value:
            return value
    return ""


def interpret(data: Any) -> ProgressStep | None:
    """What an ``ai_progress`` payload means for the request's progress; None to ignore it."""
    if not isinstance(data, Mapping):
        return None
    kind = data.get("type")
    if kind in _TEXT_TYPES:
        text = data.get("text")
        return ProgressStep("text", text) if isinstance(text, str) and text else None
    if kind in _END_TYPES:
        return ProgressStep("complete", _message(data, "message"))
    if kind == "error":
        return ProgressStep("error", _message(data, "message", "error") or "the backend failed")
    if kind not in _REPORT_TYPES:
        log.debug("ai_progress: ignoring type %r", kind)
        return None
    if kind == "working":
        step, total = _count(data.get("step")), _count(data.get("total"))
        message = _message(data, "message")
        if step and total and step <= total:
            prefix = f"Step {step}/{total}"
            return ProgressStep(
                "report", f"{prefix}: {message}" if message else prefix, (100 * step) // total
            )
        return ProgressStep("report", message or "Working…")
    if kind == "thinking":
        return ProgressStep("report", _message(data, "message") or "Thinking…")
    return ProgressStep("report", _message(data, "message", "text"))


def _count(value: Any) -> int | None:
    """A positive integer, or None."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


@attrs.define(eq=False)
class Route:
    """One waiting request: receives the events that belong to it."""

    task_id: str
    deliver: Callable[[Mapping[str, Any]], None]
    conversation_id: str | None = None
    _router: ProgressRouter | None = attrs.field(default=None, repr=False)

    def close(self) -> None:
        if self._router is not None:
            self._router.remove(self)
            self._router = None


class ProgressRouter:
    def __init__(self) -> None:
        self._by_task: dict[str, Route] = {}

    def open(
        self, task_id: str, deliver: Callable[[Mapping[str, Any]], None],
        conversation_id: str | None = None,
    ) -> Route:
        route = Route(task_id, deliver, conversation_id, self)
        self._by_task[task_id] = route
        return route

    def remove(self, route: Route) -> None:
        if self._by_task.get(route.task_id) is route:
            del self._by_task[route.task_id]

    @property
    def active(self) -> int:
        return len(self._by_task)

    def owner(self, data: Mapping[str, Any]) -> Route | None:
        task_id = data.get("task_id")
        if isinstance(task_id, str) and task_id:
            return self._by_task.get(task_id)
        conversation_id = data.get("conversation_id")
        if isinstance(conversation_id, str) and conversation_id:
            for route in self._by_task.values():
                if route.conversation_id == conversation_id:
                    return route
        if len(self._by_task) == 1:
            return next(iter(self._by_task.values()))
        return None

    def dispatch(self, data: Any) -> bool:
        """Deliver ``data`` to the request it belongs to; False when no request owns it."""
        if not isinstance(data, Mapping):
            log.debug("ai_progress: ignoring a payload that is not an object")
            return False
        route = self.owner(data)
        if route is None:
            log.debug("ai_progress: no waiting request for task %r", data.get("task_id"))
            return False
        route.deliver(data)
        return True
