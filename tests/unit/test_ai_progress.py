"""ai_progress payloads → progress steps, and which waiting request gets an event."""

from __future__ import annotations

from typing import Any

import pytest

from oropendola_ls.ai_progress import ProgressRouter, ProgressStep, interpret
from oropendola_ls.realtime import MAX_DELAY, StateChange, reconnect_delay


@pytest.mark.parametrize(("data", "step"), [
    ({"type": "thinking"}, ProgressStep("report", "Thinking…")),
    ({"type": "thinking", "message": "Reading"}, ProgressStep("report", "Reading")),
    ({"type": "working", "step": 2, "total": 4, "message": "Tests"},
     ProgressStep("report", "Step 2/4: Tests", 50)),
    ({"type": "working", "step": 5, "total": 4}, ProgressStep("report", "Working…")),
    ({"type": "working", "step": True, "total": 4}, ProgressStep("report", "Working…")),
    ({"type": "plan", "message": "1. read"}, ProgressStep("report", "1. read")),
    ({"type": "reasoning", "text": "because"}, ProgressStep("report", "because")),
    ({"type": "text", "text": "Hel", "partial": True}, ProgressStep("text", "Hel")),
    ({"type": "complete"}, ProgressStep("complete")),
    ({"type": "completion", "text": "all"}, ProgressStep("complete")),
    ({"type": "error", "message": "quota"}, ProgressStep("error", "quota")),
    ({"type": "error"}, ProgressStep("error", "the backend failed")),
])
def test_known_types(data: dict[str, Any], step: ProgressStep) -> None:
    assert interpret(data) == step


@pytest.mark.parametrize("data", [
    {"type": "ai_chunk", "token": "x"}, {"type": "tool_call"}, {}, {"type": None},
    {"type": "text", "text": ""}, {"type": "text", "text": 3}, "text", None, [1, 2],
])
def test_unknown_or_empty_payloads_are_ignored(data: Any) -> None:
    assert interpret(data) is None


def test_routing_by_task_conversation_and_single_request() -> None:
    router = ProgressRouter()
    got: dict[str, list[Any]] = {"a": [], "b": []}
    a = router.open("task-a", got["a"].append, "conv-a")
    assert router.dispatch({"type": "text", "text": "x"})  # one waiting request: it is its
    b = router.open("task-b", got["b"].append)
    assert router.dispatch({"task_id": "task-b", "n": 1})
    assert router.dispatch({"conversation_id": "conv-a", "n": 2})
    assert not router.dispatch({"task_id": "task-c"})  # another task's event is never shown
    assert not router.dispatch({"n": 3})  # two waiting, no id: nobody's
    assert not router.dispatch("not an object")
    assert [e.get("n") for e in got["a"]] == [None, 2]
    assert [e.get("n") for e in got["b"]] == [1]
    a.close()
    a.close()
    assert router.dispatch({"n": 4}) and got["b"][-1] == {"n": 4}
    b.close()
    assert router.active == 0 and not router.dispatch({"n": 5})


def test_reconnect_delays_follow_the_seed_schedule() -> None:
    assert [reconnect_delay(n, 1.0) for n in range(1, 12)] == [
        1, 2, 4, 8, 16, 30, 30, 30, 30, 30, 30]
    assert reconnect_delay(3, 0.1) == pytest.approx(0.4)
    assert reconnect_delay(60, 1.0) == MAX_DELAY  # no overflow for large attempt numbers


def test_state_change_wire_form() -> None:
    change = StateChange(state="reconnecting", previous="connected", attempt=3, max_attempts=10,
                         delay=4.0, error="connection lost (transport close)")
    assert change.to_json() == {
        "state": "reconnecting", "previousState": "connected", "attempt": 3, "maxAttempts": 10,
        "delayMs": 4000, "error": "connection lost (transport close)"}
    assert "delayMs" not in StateChange("connected", "connecting", 0, 10).to_json()


def test_report_budget_allows_a_burst_then_spaces_reports() -> None:
    from oropendola_ls.features.chat import ReportBudget

    budget = ReportBudget(rate=100.0, burst=3.0)
    assert [budget.take(10.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert budget.take(10.0) == pytest.approx(0.01)
    assert budget.take(10.011) == 0.0
    assert budget.take(20.0) == 0.0  # refilled, but never beyond the burst
    assert budget.tokens <= 3.0
