"""Run commands on this machine through the ``sh`` library."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import sh

from ringmgr.exec.base import CommandFailed, Result, Session, log_command, no_stream


@dataclass
class LocalExecutor:
    """The Executor for this machine (made by ``exec.factory``): no streaming."""

    host: str = "localhost"
    capabilities: ClassVar[frozenset[str]] = frozenset()
    timings: dict[str, float] = field(default_factory=dict)

    def start(self, argv, *, input=None, mutates=True) -> Session:
        return no_stream(self, argv)

    def close(self) -> None:
        pass

    def run(self, argv, *, check=True, input=None, timeout=None, mutates=True) -> Result:
        argv = tuple(str(a) for a in argv)
        log_command(self.host, argv, mutates)
        try:
            proc = sh.Command(argv[0])(*argv[1:], _in=input, _timeout=timeout,
                                       _ok_code=list(range(256)), _return_cmd=True,
                                       _tty_out=False,
                                       _decode_errors="replace")
            result = Result(self.host, argv, proc.exit_code, str(proc),
                            proc.stderr.decode("utf-8", "replace"))
        except sh.CommandNotFound:
            result = Result(self.host, argv, 127, "", f"{argv[0]}: command not found")
        except sh.TimeoutException:
            result = Result(self.host, argv, 124, "", f"timed out after {timeout} s")
        if check and not result.ok:
            raise CommandFailed(result)
        return result
