"""Run a long-lived stage until SIGINT/SIGTERM: the one place signal handling lives.

Every service (``hazmon bridge``, ``detect``, ``alerting``, the demo) is an ``async`` body that
takes a :class:`asyncio.Event` and returns when it is set::

    async def body(stop: asyncio.Event) -> int:
        service = build(settings)
        await service.run(stop)
        return 0

    sys.exit(run_until_signalled(body))

The first signal sets ``stop`` (the body winds down: flushes, commits, closes); a second one
while it is still winding down cancels the body, so a stuck shutdown can always be cut short.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable, Iterator

__all__ = ["serve_until_signalled", "run_until_signalled", "stop_on_signals"]

log = logging.getLogger("hazmon")

_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def stop_on_signals(stop: asyncio.Event, *, on_second: Callable[[], object] | None = None,
                    on_first: Callable[[], object] | None = None) -> Iterator[None]:
    """While inside, SIGINT/SIGTERM set ``stop`` (and call ``on_first``, if given); a second
    signal calls ``on_second`` (if given).

    Must be entered from a running event loop's thread. The handlers are removed on exit, so
    the default behaviour (KeyboardInterrupt) returns once the body is done.
    """
    loop = asyncio.get_running_loop()

    def on_signal(sig: signal.Signals) -> None:
        if stop.is_set() and on_second is not None:
            log.warning("second %s while stopping: cutting the shutdown short", sig.name)
            on_second()
            return
        log.info("%s: stopping", sig.name)
        stop.set()
        if on_first is not None:
            on_first()

    installed: list[signal.Signals] = []
    for sig in _SIGNALS:
        with contextlib.suppress(NotImplementedError, RuntimeError):  # not the main thread / platform
            loop.add_signal_handler(sig, on_signal, sig)
            installed.append(sig)
    try:
        yield
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)


async def serve_until_signalled(body: Callable[[asyncio.Event], Awaitable[int | None]]) -> int:
    """Await ``body(stop)`` with ``stop`` set by the first SIGINT/SIGTERM; its status, or 130
    when a second signal cancelled it."""
    stop = asyncio.Event()
    task = asyncio.ensure_future(body(stop))
    with stop_on_signals(stop, on_second=task.cancel):
        try:
            return int(await task or 0)
        except asyncio.CancelledError:
            if task.cancelled():
                return 130
            raise


def run_until_signalled(body: Callable[[asyncio.Event], Awaitable[int | None]]) -> int:
    """:func:`serve_until_signalled` in a fresh event loop (the CLI's entry)."""
    try:
        return asyncio.run(serve_until_signalled(body))
    except KeyboardInterrupt:  # a signal before the handlers were installed
        return 130
