"""One operation on many hosts: bounded concurrency, per-host result or error, one summary.

Like Fabric's ``ThreadingGroup`` / ``GroupResult``: ``fan_out(items, work, parallel=N)``
runs ``work(item)`` for every host, at most ``N`` at once ([ssh].parallel), and returns
a ``GroupResult``: one ``HostOutcome`` per host in the order given, each with the
value ``work`` returned or the one-line error it raised (one host's failure never
stops the others), ``failed`` naming the hosts that failed, and ``exit_code`` 2 when
any did.  ``progress(outcome)`` is called as each host finishes (under a lock: lines
do not interleave).  Used by push, verify, drive-audit and the schedule's checks.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable, Generic, Iterable, TypeVar

from ringmgr.errors import EXIT_ERROR, EXIT_OK

log = logging.getLogger("ringmgr.exec")

T = TypeVar("T")
H = TypeVar("H")


@dataclass
class HostOutcome(Generic[T]):
    host: str
    value: T | None = None
    error: str | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass
class GroupResult(Generic[T]):
    outcomes: list[HostOutcome[T]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return all(o.ok for o in self.outcomes)

    @property
    def failed(self) -> dict[str, str]:
        return {o.host: o.error for o in self.outcomes if not o.ok}

    @property
    def values(self) -> list[T]:
        return [o.value for o in self.outcomes if o.ok]

    @property
    def exit_code(self) -> int:
        return EXIT_OK if self.ok else EXIT_ERROR

    def summary(self) -> str:
        n, bad = len(self.outcomes), self.failed
        if not bad:
            return f"{n} host(s): all ok ({self.seconds:.2f}s)"
        return (f"{n} host(s): {n - len(bad)} ok, {len(bad)} failed: "
                + "; ".join(f"{h}: {e}" for h, e in bad.items()))


def one_line(e: BaseException) -> str:
    text = str(e).strip() or type(e).__name__
    return text.splitlines()[0]


def fan_out(items: Iterable[H], work: Callable[[H], T], *, parallel: int,
            name: Callable[[H], str] = lambda h: getattr(h, "name", str(h)),
            progress: Callable[[HostOutcome[T]], None] | None = None,
            label: str = "fanout") -> GroupResult[T]:
    """Run ``work`` on every item (a host), at most ``parallel`` at once."""
    items = list(items)
    lock = threading.Lock()
    start = time.monotonic()

    def one(item: H) -> HostOutcome[T]:
        host = name(item)
        out: HostOutcome[T] = HostOutcome(host)
        t0 = time.monotonic()
        try:
            out.value = work(item)
        except Exception as e:  # noqa: BLE001 - one host's failure is collected
            out.error = one_line(e).removeprefix(f"[{host}] ")
            log.debug("[%s] %s failed", host, label, exc_info=True)
        out.seconds = time.monotonic() - t0
        if progress is not None:
            with lock:
                progress(out)
        return out

    if not items:
        return GroupResult([], 0.0)
    workers = max(1, min(parallel, len(items)))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"ringmgr-{label}") as pool:
        outcomes = list(pool.map(one, items))
    return GroupResult(outcomes, time.monotonic() - start)
