"""What one run of the partition-power increase needs from outside (``Env``) and what
it tells its caller (``Outcome``).

``Env`` holds one executor per host for the whole invocation: the precheck, the
relinker start, every poll and the cleanup reuse the host's one SSH connection (a new
connection per poll cost more than the polling itself).  ``Env.close()`` (or ``with
env:``) closes them all, also after an error or an interrupt.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Callable

from ringmgr.config import Config
from ringmgr.ops import relinker as rl


@dataclass
class Env:
    """What a run needs from outside: the config, the rings, the options, and the
    injected effects (executors, recon, push, clock)."""

    config: Config
    rings: list[str]
    opts: rl.RelinkOptions = field(default_factory=rl.RelinkOptions)
    argv: list[str] = field(default_factory=list)
    echo: Callable[[str], None] = lambda s: None
    warn: Callable[[str], None] = lambda s: None
    executor_factory: Callable | None = None
    recon: Callable | None = None         # recon(ip, port, what) -> JSON
    push: Callable | None = None          # push(change_id) -> PushReport
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.time
    poll_interval: float = 5.0
    _executors: dict = field(default_factory=dict, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    _warming: dict = field(default_factory=dict, init=False, repr=False)
    _pool: object = field(default=None, init=False, repr=False)

    def __post_init__(self):
        if self.recon is None:
            from ringmgr.ops.partpower_recon import recon_getter

            self.recon = recon_getter(self.config)

    def warm(self, hosts) -> None:
        """Connect to every host at once in the background (at most ``[ssh].parallel``
        at a time); a failure shows when the host's executor is used (it connects
        again and reports it)."""
        hosts = [h for h in hosts if self._key(h) not in self._warming]
        if not hosts:
            return
        from concurrent.futures import ThreadPoolExecutor

        def connect(host):
            ex = self._make(host)
            if hasattr(ex, "connect"):
                ex.connect()

        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(
                    max_workers=max(1, min(self.config.ssh.parallel, len(hosts))),
                    thread_name_prefix="ringmgr-connect")
            for h in hosts:
                self._warming[self._key(h)] = self._pool.submit(connect, h)

    @staticmethod
    def _key(host):
        return (host.name, getattr(host, "host", None))

    def executor(self, host):
        """The host's executor, made on first use and reused until ``close()`` (it
        connects lazily, and again after its connection dropped)."""
        fut = self._warming.get(self._key(host))
        if fut is not None:
            try:
                fut.result()        # its connect ended (so two never race)
            except Exception:  # noqa: BLE001 - the next command connects again, reports
                pass
        return self._make(host)

    def _make(self, host):
        key = self._key(host)
        with self._lock:
            ex = self._executors.get(key)
            if ex is None:
                if self.executor_factory is not None:
                    ex = self.executor_factory(host)
                else:
                    from ringmgr.exec.factory import executor_for

                    ex = executor_for(self.config, host, dry_run=False)
                self._executors[key] = ex
        return ex

    def close(self) -> None:
        """Close every executor this run opened (a failure to close is not the run's)."""
        from ringmgr.exec.factory import close_all

        pool, self._pool = self._pool, None
        if pool is not None:        # connects under way end first (bounded by the
            pool.shutdown(wait=True, cancel_futures=True)   # connect timeout)
        self._warming = {}
        with self._lock:
            executors, self._executors = list(self._executors.values()), {}
        close_all(*executors)

    def __enter__(self) -> "Env":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


@dataclass
class Outcome:
    """One run's result: did it advance, is the operation complete, is it waiting."""

    data: dict
    complete: bool = False
    waiting: str | None = None        # relinkers still running (say when to look again)
    written: bool = False
    nothing_to_do: bool = False
