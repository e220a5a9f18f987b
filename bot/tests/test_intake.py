"""In an overload, only so many updates take their first steps at once; the rest wait."""

import asyncio
from typing import Any

import pytest

from bot.middlewares.intake import IntakeGate, intake_done


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_updates_beyond_the_limit_wait_in_arrival_order() -> None:
    gate = IntakeGate(2)
    started: list[int] = []
    finish = asyncio.Event()

    async def handler(event: Any, _data: dict[str, Any]) -> None:
        started.append(event)
        await finish.wait()

    tasks = [asyncio.create_task(gate(handler, n, {})) for n in range(5)]  # type: ignore[arg-type]
    await _settle()
    assert started == [0, 1]  # the other three wait
    finish.set()
    await asyncio.gather(*tasks)
    assert started == [0, 1, 2, 3, 4]


async def test_an_answer_gives_its_slot_back_once_the_backend_started_it() -> None:
    gate = IntakeGate(1)
    started: list[str] = []
    answer_ends = asyncio.Event()

    async def long_answer(event: Any, _data: dict[str, Any]) -> None:
        started.append(event)
        intake_done()
        intake_done()  # a second call gives back nothing more
        await answer_ends.wait()

    first = asyncio.create_task(gate(long_answer, "first", {}))  # type: ignore[arg-type]
    second = asyncio.create_task(gate(long_answer, "second", {}))  # type: ignore[arg-type]
    third = asyncio.create_task(gate(long_answer, "third", {}))  # type: ignore[arg-type]
    await _settle()
    assert started == ["first", "second", "third"]  # none waits for an answer to finish
    answer_ends.set()
    await asyncio.gather(first, second, third)

    # Each slot went back once: the gate still admits one update at a time.
    blocked: list[str] = []
    hold = asyncio.Event()

    async def first_steps(event: Any, _data: dict[str, Any]) -> None:
        blocked.append(event)
        await hold.wait()

    later = [asyncio.create_task(gate(first_steps, n, {})) for n in ("a", "b")]  # type: ignore[arg-type]
    await _settle()
    assert blocked == ["a"]
    hold.set()
    await asyncio.gather(*later)


async def test_a_failed_update_gives_its_slot_back() -> None:
    gate = IntakeGate(1)

    async def fails(_event: Any, _data: dict[str, Any]) -> None:
        raise RuntimeError("boom")

    async def works(event: Any, _data: dict[str, Any]) -> str:
        return f"answered {event}"

    with pytest.raises(RuntimeError):
        await gate(fails, 1, {})  # type: ignore[arg-type]
    assert await asyncio.wait_for(gate(works, 2, {}), 5) == "answered 2"  # type: ignore[arg-type]


async def test_intake_done_outside_an_update_does_nothing() -> None:
    intake_done()


def test_the_dispatcher_gates_updates_after_their_place_in_the_user_queue() -> None:
    from bot.main import create_dispatcher
    from bot.middlewares.ordering import OrderingMiddleware
    from bot.services.backend import BackendClient
    from bot.tests.conftest import bot_settings

    settings = bot_settings(intake_limit=7)
    dp = create_dispatcher(settings, BackendClient("http://backend.test", "token"))
    kinds = [type(m) for m in dp.update.outer_middleware]
    gates = [m for m in dp.update.outer_middleware if isinstance(m, IntakeGate)]
    assert [gate.limit for gate in gates] == [7]
    assert kinds.index(OrderingMiddleware) < kinds.index(IntakeGate)
