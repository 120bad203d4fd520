"""Per-host push and verify results, the run's report, its JSON and its tables."""

from __future__ import annotations

from dataclasses import dataclass, field

from ringmgr.exec import plan as hostplan
from ringmgr.ops.push.plan import LocalRing

@dataclass
class HostResult:
    node: str
    address: str
    ok: bool = False
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)
    planned: list[str] = field(default_factory=list)
    verify: dict[str, str] = field(default_factory=dict)
    removed_tmp: list[str] = field(default_factory=list)
    error: str | None = None
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)
    plan: list[hostplan.HostStep] = field(default_factory=list)   # a dry run's command

    def to_json(self) -> dict:
        return {k: (round(v, 3) if isinstance(v, float) else v)
                for k, v in self.__dict__.items() if k != "plan"} | {
            "timings": {k: round(v, 3) for k, v in self.timings.items()}}


@dataclass
class PushReport:
    kind: str                            # push | verify
    rings: dict[str, LocalRing]
    results: list[HostResult]
    dry_run: bool = False
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.results)

    @property
    def failed(self) -> list[str]:
        return [r.node for r in self.results if r.error or r.refused]

    @property
    def differ(self) -> list[str]:
        return [r.node for r in self.results
                if not r.error and any(s != "ok" for s in r.verify.values())]

    @property
    def written(self) -> bool:
        return any(r.updated for r in self.results)

    def retry_command(self) -> str | None:
        if not self.failed:
            return None
        import shlex

        return shlex.join(["ringmgr", self.kind, *self.failed])  # node names may have spaces

    @property
    def plan(self) -> list[hostplan.HostStep]:
        return [s for r in self.results for s in r.plan]

    def to_json(self) -> dict:
        extra = {"host_steps": hostplan.to_json(self.plan)} if self.dry_run else {}
        return extra | {
            "written": self.written,
            "ok": self.ok,
            "dry_run": self.dry_run,
            "seconds": round(self.seconds, 3),
            "rings": {n: {"md5": r.md5, "version": r.version, "size": r.size}
                      for n, r in sorted(self.rings.items())},
            "hosts": {r.node: r.to_json() for r in self.results},
            "failed": self.failed,
            "retry": self.retry_command(),
        }

    def render_table(self) -> str:
        if self.kind == "verify":
            return self._render_verify()
        head = ("node", "would update" if self.dry_run else "updated", "unchanged",
                "time", "error")
        rows = []
        for r in self.results:
            upd = r.planned if self.dry_run else r.updated
            err = r.error or "; ".join(f"{n}: {why}" for n, why in r.refused.items())
            rows.append((r.node, _names(upd), _names(r.unchanged), f"{r.seconds:.2f}s",
                         err or ""))
        return _table(head, rows)

    render_text = render_table

    def _render_verify(self) -> str:
        names = sorted({n for r in self.results for n in r.verify} | set(self.rings))
        head = ("node", *[n.removesuffix(".ring.gz") for n in names], "error")
        rows = [(r.node, *[r.verify.get(n, "-") if not r.error else "?" for n in names],
                 r.error or "") for r in self.results]
        return _table(head, rows)


def _names(files) -> str:
    return ",".join(n.removesuffix(".ring.gz") for n in files) or "-"


def _table(head, rows) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows)]
    lines = ["  ".join(str(x).ljust(w) for x, w in zip(row, widths)).rstrip()
             for row in [head, *rows]]
    return "\n".join(lines)
