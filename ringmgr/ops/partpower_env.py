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

    def __post_init__(self):
        if self.recon is None:
            from ringmgr.ops.partpower_recon import recon_getter

            self.recon = recon_getter(self.config)

    def executor(self, host):
        """The host's executor, made on first use and reused until ``close()`` (it
        connects lazily, and again after its connection dropped)."""
        key = (host.name, getattr(host, "host", None))
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
