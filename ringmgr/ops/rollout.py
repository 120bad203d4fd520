"""Confirmed rollouts: ``push --canary N``.

A push that lands is not yet a ring in use: proxies and the background daemons re-read a
changed ring.gz at most ``reload_time`` later (15 s in swift).  So the rings go first to N
canary hosts (a proxy among them when the config has proxies), then:

1. the file is confirmed on each canary (md5 over SSH, as ``verify`` does);
2. ringmgr waits ``[cluster].ring_reload`` seconds;
3. each canary proxy with ``endpoints_url`` is asked where it places a name of a
   partition the change moved (``endpoints.py``): it must answer as the new ring does;
4. then the other hosts, in waves of ``[ssh].parallel``.

Any failure stops the rollout: hosts not yet reached keep the old rings, which are
consistent among themselves; the report names both groups and the commands to continue
(``ringmgr push HOST...``) or to roll back (``ringmgr rollback``, then push).
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ringmgr.ops.endpoints import EndpointCheck, checked_rings

if TYPE_CHECKING:
    from ringmgr.ops.push.report import PushReport

log = logging.getLogger("ringmgr.rollout")

RELOAD_MARGIN = 0.5   # seconds beyond ring_reload before the proxies are asked


@dataclass
class Wave:
    number: int
    kind: str                        # canary | wave
    hosts: list[str]
    updated: dict[str, list[str]] = field(default_factory=dict)
    confirmed: dict[str, str] = field(default_factory=dict)   # host -> ok | why not
    endpoints: list[EndpointCheck] = field(default_factory=list)
    error: str | None = None
    report: PushReport | None = None   # recorded by the CLI

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_json(self) -> dict:
        return {"number": self.number, "kind": self.kind, "hosts": self.hosts,
                "ok": self.ok, "updated": self.updated, "confirmed": self.confirmed,
                "endpoints": [e.to_json() for e in self.endpoints], "error": self.error}


@dataclass
class Rollout:
    canary: int
    waves: list[Wave] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)    # hosts left on the old rings
    stopped: str | None = None
    dry_run: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def pushed(self) -> list[str]:
        return [h for w in self.waves for h in w.hosts
                if w.report is not None and h not in w.report.failed]

    def to_json(self) -> dict:
        return {"canary": self.canary, "dry_run": self.dry_run, "ok": self.stopped is None,
                "waves": [w.to_json() for w in self.waves], "pending": self.pending,
                "stopped": self.stopped, "notes": self.notes}

    def render_text(self) -> str:
        lines = []
        for w in self.waves:
            state = "ok" if w.ok else f"FAILED: {w.error}"
            name = "canary" if w.kind == "canary" else f"wave {w.number}"
            lines.append(f"{name}: {', '.join(w.hosts)}: {state}")
            for e in w.endpoints:
                verdict = "new ring" if e.ok else "NOT the new ring"
                lines.append(f"  {e.proxy} /endpoints for {e.ring} partition {e.partition}"
                             f"{' (moved)' if e.moved else ''}: {verdict}")
        if self.pending:
            lines.append(f"not pushed (old rings): {', '.join(self.pending)}")
        return "\n".join(lines)


def choose_canaries(hosts: dict, n: int, proxies: set[str]) -> list[str]:
    """``n`` canary hosts: one proxy first when there is one, then storage nodes in
    config order, then more proxies."""
    names = list(hosts)
    first = [h for h in names if h in proxies][:1]
    rest = [h for h in names if h not in proxies] + [h for h in names if h in proxies]
    out = list(first)
    for h in rest:
        if len(out) >= n:
            break
        if h not in out:
            out.append(h)
    return out[:max(n, 0)]


def waves_of(names: list[str], size: int) -> list[list[str]]:
    return [names[i:i + size] for i in range(0, len(names), max(1, size))]


def remote_md5s(config, host, files: list[str], accept_new: bool,
                transport=None) -> dict[str, str]:
    """md5 of each ring file in the host's swift_dir (over SSH; missing files absent)."""
    from ringmgr.exec.factory import executor_for
    from ringmgr.exec.ssh import KnownHosts

    ex = executor_for(config, host, dry_run=False, transport=transport,
                      known_hosts=KnownHosts.from_config(config.ssh, accept_new))
    try:
        r = ex.run(["md5sum", "--", *[f"{host.swift_dir}/{f}" for f in files]],
                   check=False, mutates=False, timeout=60)
    finally:
        ex.close()
    out = {}
    for line in r.stdout.splitlines():
        md5, _, path = line.partition("  ")
        if len(md5) == 32:
            out[path.rsplit("/", 1)[-1]] = md5
    return out


def find_ring_file(builder_dir: Path, name: str, md5: str) -> Path | None:
    """The admin host's copy of a ring with this md5: the current file or a backup
    (``backups/<time>.<change id>.<name>``), newest first."""
    candidates = [builder_dir / name] + sorted(
        (builder_dir / "backups").glob(f"*.{name}"), reverse=True)
    for p in candidates:
        try:
            if hashlib.md5(p.read_bytes(), usedforsecurity=False).hexdigest() == md5:
                return p
        except OSError:
            continue
    return None


def old_rings_of(config, proxy, local: dict, accept_new: bool, notes: list,
                 transport=None) -> dict:
    """Ring name -> the RingData the proxy had before the push (None: unknown), for the
    rings whose md5 changes on it."""
    from swift.common.ring import RingData

    files = [f"{r}.ring.gz" for r in checked_rings(config) if f"{r}.ring.gz" in local]
    try:
        theirs = remote_md5s(config, proxy, files, accept_new, transport)
    except Exception as e:  # noqa: BLE001 - the push itself will report the host
        notes.append(f"{proxy.name}: could not read its ring md5s before the push ({e})")
        return {}
    out = {}
    for f in files:
        ring = f.removesuffix(".ring.gz")
        if theirs.get(f) == local[f].md5:
            continue                      # unchanged on this proxy: nothing to prove
        path = find_ring_file(Path(config.cluster.builder_dir), f, theirs[f]) \
            if f in theirs else None
        if path is None:
            notes.append(f"{proxy.name}: its {f} is not among the admin host's backups; "
                         f"the endpoints check of the {ring} ring uses any partition, so "
                         f"it cannot show that the proxy left the old ring")
        out[ring] = RingData.load(str(path)) if path else None
    return out


def rollout(config, names, canary: int, *, force: bool = False, accept_new: bool = False,
            progress=None, note=lambda m: None, sleep=time.sleep,
            transport=None) -> Rollout:
    """Canaries, proof, then waves (see the module docstring).  Per-host failures are
    in the result (``stopped``), not raised.  ``transport``: as ``push_rings``'s (the
    CLI's ``App.transport``; None is the configured one)."""
    from swift.common.ring import RingData

    from ringmgr.ops.endpoints import check_proxy, hash_conf
    from ringmgr.ops.push import load_local_rings, push_rings, select_hosts, verify_rings

    hosts = select_hosts(config, names)
    local = load_local_rings(config.cluster.builder_dir, config.cluster.rings)
    md5s = {n: r.md5 for n, r in local.items()}
    out = Rollout(canary)
    canaries = choose_canaries(hosts, canary, set(config.proxies))
    later = [h for h in hosts if h not in canaries]
    probes = {n: hosts[n] for n in canaries
              if n in config.proxies and config.proxies[n].endpoints_url}
    if canaries and not probes:
        out.notes.append("no canary proxy with endpoints_url: the canaries are confirmed by "
                         "their ring md5s only (a proxy's swift list_endpoints middleware "
                         "shows the ring it has loaded)")
    hashes = hash_conf(config.cluster.swift_conf)
    if probes and hashes is None:
        out.notes.append("no [swift-hash] in [cluster].swift_conf: cannot make up names "
                         "to ask the proxy's list_endpoints; md5s only")
        probes = {}
    old = {n: old_rings_of(config, h, local, accept_new, out.notes, transport)
           for n, h in probes.items()}
    unasked = sorted(f.removesuffix(".ring.gz") for f in local
                     if f.removesuffix(".ring.gz") not in checked_rings(config))
    if probes and unasked:
        out.notes.append(f"{', '.join(unasked)}: confirmed by md5 only (list_endpoints "
                         f"takes an object's policy from its container: name a container "
                         f"of each policy in [cluster].canary_containers to ask the proxy)")

    wave = Wave(0, "canary", canaries)
    out.waves.append(wave)
    note(f"canary: pushing to {', '.join(canaries)} first")
    if not _push_wave(config, wave, force, accept_new, progress, push_rings, md5s, transport):
        return _stop(out, hosts, f"canary push failed: {wave.error}")
    ver = verify_rings(config, canaries, accept_new_host_keys=accept_new, transport=transport)
    for r in ver.results:
        bad = {n: s for n, s in r.verify.items() if s not in ("ok", "extra")}
        wave.confirmed[r.node] = r.error or ("ok" if not bad else
                                             ", ".join(f"{n} {s}" for n, s in bad.items()))
    unconfirmed = {h: why for h, why in wave.confirmed.items() if why != "ok"}
    if unconfirmed:
        wave.error = "; ".join(f"{h}: {why}" for h, why in unconfirmed.items())
        return _stop(out, hosts, f"the canaries' rings are not confirmed: {wave.error}")
    if not any(files for files in wave.updated.values()):
        probes = {}                       # the canaries had the rings already
    if probes:
        wait = config.cluster.ring_reload + RELOAD_MARGIN
        note(f"canary: rings confirmed; waiting {wait:g}s for the servers to re-read them "
             f"([cluster].ring_reload)")
        sleep(wait)
        for name in probes:
            url = config.proxies[name].endpoints_url
            for ring, prev in old[name].items():
                new = RingData.load(str(Path(config.cluster.builder_dir) / f"{ring}.ring.gz"))
                wave.endpoints.append(check_proxy(
                    name, url, ring, new, prev, hashes,
                    container=config.cluster.canary_containers.get(ring)))
        failed = [e for e in wave.endpoints if not e.ok]
        if failed:
            wave.error = "; ".join(f"{e.proxy} {e.ring} ring: {e.detail}" for e in failed)
            return _stop(out, hosts, f"the canary proxy does not use the new rings "
                                     f"{config.cluster.ring_reload:g}s after the push: "
                                     f"{wave.error}")
    for i, names_ in enumerate(waves_of(later, config.ssh.parallel), start=1):
        wave = Wave(i, "wave", names_)
        out.waves.append(wave)
        note(f"wave {i}: pushing to {', '.join(names_)}")
        if not _push_wave(config, wave, force, accept_new, progress, push_rings, md5s, transport):
            return _stop(out, hosts, f"wave {i} failed: {wave.error}")
    return out


def _stop(out: Rollout, hosts: dict, why: str) -> Rollout:
    pushed = set(out.pushed)
    out.pending = [h for h in hosts if h not in pushed]
    out.stopped = why
    return out


def _push_wave(config, wave: Wave, force, accept_new, progress, push_rings, md5s,
               transport=None) -> bool:
    from ringmgr.ops.push import load_local_rings

    now = {n: r.md5 for n, r in load_local_rings(config.cluster.builder_dir,
                                                 config.cluster.rings).items()}
    if now != md5s:
        wave.error = ("the admin host's rings changed during the rollout; nothing more was "
                      "pushed (start the rollout again for the new rings)")
        return False
    rep = push_rings(config, wave.hosts, force=force, accept_new_host_keys=accept_new,
                     progress=progress, transport=transport)
    wave.report = rep
    wave.updated = {r.node: list(r.updated) for r in rep.results}
    if rep.failed:
        wave.error = "; ".join(f"{r.node}: {r.error or '; '.join(r.refused.values())}"
                               for r in rep.results if r.node in rep.failed)
        return False
    return True
