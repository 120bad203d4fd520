"""What the replace-disk steps share: the options, the context (node, device,
executor, journaled parameters, findings), names and the parameters chosen once."""

from __future__ import annotations

import re
import time
import uuid as uuidlib
from dataclasses import dataclass, field
from typing import Callable

from ringmgr.config import Config, Node
from ringmgr.errors import Refused, UsageError
from ringmgr.exec.base import Executor, Result
from ringmgr.ops import facts

NAME_RE = re.compile(r"^[A-Za-z0-9._-]+$")
XFS_LABEL_MAX = 12

@dataclass
class ReplaceOptions:
    replaced: bool = False
    force_format: bool = False
    lazy: bool = False
    weight_zero: bool = False
    label: str | None = None
    again: bool = False
    push: bool | None = None  # push after a ring change (None: [cluster].push)


@dataclass
class DiskContext:
    """Everything the steps read: node, device, executor, journaled parameters."""

    config: Config
    node: Node
    dev: str
    ex: Executor
    opts: ReplaceOptions
    params: dict = field(default_factory=dict)
    dry_run: bool = False
    echo: Callable[[str], None] = lambda line: None
    ask_replaced: Callable[[], bool] | None = None
    findings: dict = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    assumed_unmounted: bool = False
    push_due: list[str] = field(default_factory=list)   # ring changes not on the nodes
    pushed: list[str] = field(default_factory=list)
    transport: Callable | None = None    # how a push reaches the hosts (the CLI's)

    @property
    def block(self) -> str:
        return self.node.block_device(self.dev)

    @property
    def mount_root(self) -> str:
        return self.node.mount_root.rstrip("/") or "/"

    @property
    def mount_point(self) -> str:
        return f"{self.mount_root}/{self.dev}"

    @property
    def fstab_path(self) -> str:
        return self.node.fstab

    def warn(self, text: str) -> None:
        self.warnings.append(text)
        self.echo(f"warning: {text}")

    # -- facts (read-only commands) ---------------------------------------------
    def q(self, *argv: str, check: bool = False) -> Result:
        return self.ex.run(argv, check=check, mutates=False)

    def mounts(self) -> list[facts.Mount]:
        return facts.parse_mountinfo(self.q(*facts.MOUNTINFO_ARGV, check=True).stdout)

    def lsblk(self) -> facts.BlockDev | None:
        r = self.q(*facts.lsblk_argv(self.block))
        if not r.ok:
            return None
        devs = facts.parse_lsblk(r.stdout)
        return devs[0] if devs else None

    def blkid(self) -> dict[str, str]:
        return facts.parse_blkid_export(self.q(*facts.blkid_argv(self.block)).stdout)

    def mounted_here(self) -> facts.Mount | None:
        here = facts.mounts_at(self.mounts(), self.mount_point)
        return here[-1] if here else None



# -- names and parameters ---------------------------------------------------------
def check_name(kind: str, value: str) -> None:
    if not NAME_RE.fullmatch(value) or value in (".", ".."):
        raise UsageError(f"{kind} {value!r} has characters outside [A-Za-z0-9._-]; "
                         f"use the name as the rings and the config spell it")


def operation_key(node: str, dev: str) -> str:
    return f"replace-disk.{node}.{dev}"


def _journaled(journal, name: str, value) -> None:
    """A label or UUID read back from a run's journal must still be one (they reach
    mkfs and fstab)."""
    try:
        if name == "uuid":
            uuidlib.UUID(str(value))
        elif not (isinstance(value, str) and NAME_RE.match(value)
                  and 0 < len(value) <= XFS_LABEL_MAX):
            raise ValueError
    except ValueError:
        raise Refused(f"journal {journal.path}: {name} {str(value)[:40]!r} is not a valid "
                      f"{name}: the journal was edited; nothing was done (move it away to "
                      f"start afresh)") from None


def choose_params(journal, dev: str, label: str | None) -> dict:
    """The new filesystem's UUID and label and the fstab backup tag, chosen once."""
    want = label or dev[:XFS_LABEL_MAX]
    check_name("label", want)
    if len(want) > XFS_LABEL_MAX:
        raise UsageError(f"label {want!r} is longer than XFS's {XFS_LABEL_MAX} characters; "
                         f"pass a shorter one with --label")
    got = journal.param("label", lambda: want, check=lambda v: _journaled(journal, "label", v))
    if label and got != label:
        if journal.step_state("mkfs") not in (None, "pending"):
            raise UsageError(f"the run in progress formatted (or began to format) with "
                             f"label {got!r}; finish it with that label (omit --label)")
        journal.set_param("label", label)  # not used before mkfs: still free to choose
    journal.param("uuid", lambda: str(uuidlib.uuid4()),
                  check=lambda v: _journaled(journal, "uuid", v))
    journal.param("tag", lambda: time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()))
    return journal.params

