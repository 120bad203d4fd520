"""What one run of the partition-power increase needs from outside (``Env``) and what
it tells its caller (``Outcome``)."""

from __future__ import annotations

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

    def __post_init__(self):
        if self.recon is None:
            from ringmgr.ops.partpower_recon import recon_getter

            self.recon = recon_getter(self.config)

    def executor(self, host):
        if self.executor_factory is not None:
            return self.executor_factory(host)
        from ringmgr.exec.factory import executor_for

        return executor_for(self.config, host, dry_run=False)


@dataclass
class Outcome:
    """One run's result: did it advance, is the operation complete, is it waiting."""

    data: dict
    complete: bool = False
    waiting: str | None = None        # relinkers still running (say when to look again)
    written: bool = False
    nothing_to_do: bool = False
