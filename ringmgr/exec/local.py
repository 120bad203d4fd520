"""Run commands on this machine through the ``sh`` library."""

from __future__ import annotations

from dataclasses import dataclass

import sh

from ringmgr.exec.base import CommandFailed, Result, log_command


@dataclass
class LocalExecutor:
    host: str = "localhost"

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
