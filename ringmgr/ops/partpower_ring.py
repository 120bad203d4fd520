"""The ring phases of the partition-power increase (prepare, increase, cancel,
finish): swift's builder call unless made already, write, push to every node and proxy
(each confirmed by md5), and wait the ring reload interval."""

from __future__ import annotations

from ringmgr.errors import StepFailed
from ringmgr.ops.partpower_env import Env
from ringmgr.ops.partpower_journal import nodes_done, phase_info
from ringmgr.rings import partpower as pp
from ringmgr.rings.store import RingStore


def ring_phase(env: Env, j, phase: str) -> bool:
    """swift's call for ``phase`` (unless made already), write, push, confirm, wait."""
    config = env.config
    info = phase_info(j, phase)
    written = False
    if not info.get("pushed_at"):
        store = RingStore(config.cluster.builder_dir, tuple(env.rings),
                          config.cluster.lock_timeout, config.cluster.format_version)
        with store.lock():
            store.refuse_if_pending(held=True)
            builders = {r: store.load(r) for r in env.rings}
            new = {}
            for r, b in builders.items():
                after = pp.apply_ring_phase(b, phase)
                if after is not None:
                    new[r] = after
                elif not store.ring_check(r, b).current:
                    new[r] = b    # swift-ring-builder changed the builder, not the ring
            if new:
                record = store.commit(new, {
                    "description": f"increase-part-power {phase} "
                                   f"({', '.join(sorted(new))})",
                    "argv": env.argv, "seed": None,
                    "rings": {r: {"version_before": builders[r].version} for r in new},
                    "part_power": {"phase": phase, "operation": j.params.get("op_id"),
                                   "relinked": nodes_done(j, "relink"),
                                   "cleaned_up": nodes_done(j, "cleanup")}})
                info["change_id"] = record["id"]
                written = True
                env.echo(f"written: change #{record['id']}: " + ", ".join(
                    f"{r} part_power {b.part_power} next_part_power {b.next_part_power} "
                    f"version {b.version}" for r, b in sorted(new.items())))
            else:
                env.echo("the builders are already past this call; pushing them")
            info["versions"] = {r: (new.get(r) or builders[r]).version for r in env.rings}
        j.set_param("phases", j.params["phases"])
        report = env.push(info.get("change_id"))
        info["pushed"] = sorted(h.node for h in report.results if h.ok)
        if not report.ok:
            j.set_param("phases", j.params["phases"])
            err = StepFailed(f"{phase}: the rings were written, but the push failed on "
                             f"{', '.join(report.failed)}; fix them and run the same "
                             f"command again (the push is repeated, nothing else)")
            err.written = written
            raise err
        info["pushed_at"] = env.clock()
        j.set_param("phases", j.params["phases"])
    left = info["pushed_at"] + config.cluster.ring_reload - env.clock()
    if left > 0 and phase != "finish":
        env.echo(f"waiting {left:.0f} s until every server has re-read the ring "
                 f"([cluster].ring_reload)")
        env.sleep(left)
    if phase == "increase":
        info["endpoints"] = proxies_use_the_increase(env)
        j.set_param("phases", j.params["phases"])
    return written


def proxies_use_the_increase(env: Env, limit: float | None = None) -> dict:
    """Every proxy with ``endpoints_url`` answers by the increased object ring (policy 0:
    list_endpoints places a name in a container it does not know by policy 0) before
    the cleanup may remove the old links: asked for a made-up name whose partition at
    the new power is not one of the old power's, until it does, at most
    ``limit`` (default 4 x ring_reload, at least 60 s); then the phase stays open."""
    from swift.common.ring import RingData

    from ringmgr.ops import endpoints as ep

    config = env.config
    proxies = {n: p.endpoints_url for n, p in config.proxies.items()
               if getattr(p, "endpoints_url", None)}
    hashes = ep.hash_conf(config.cluster.swift_conf)
    if "object" not in env.rings or not proxies or hashes is None:
        return {}
    new = RingData.load(f"{config.cluster.builder_dir}/object.ring.gz")
    parts = 2 ** (32 - new._part_shift)
    names, part = ep.find_probe("object", new._part_shift, set(range(parts // 2, parts)),
                                hashes)
    want = {(ip, port, dev, part) for ip, port, dev in ep.primaries(new, part)}
    deadline = env.clock() + (limit if limit is not None
                              else max(60.0, 4 * config.cluster.ring_reload))
    while True:
        behind = {}
        for name, url in sorted(proxies.items()):
            try:
                got = ep.parse_endpoints(ep.ask(url, names, 10.0))
            except Exception as e:  # noqa: BLE001 - named below
                behind[name] = str(e).strip().splitlines()[-1] if str(e) else type(e).__name__
                continue
            if got != want:
                behind[name] = (f"places {'/'.join(names)} in partition(s) "
                                f"{', '.join(str(p) for p in sorted({g[3] for g in got}))}"
                                f", the increased ring in {part}")
        if not behind:
            env.echo(f"every proxy ({', '.join(sorted(proxies))}) answers by the increased "
                     f"ring (list_endpoints: {'/'.join(names)} in partition {part})")
            return {"probe": "/".join(names), "partition": part, "proxies": sorted(proxies)}
        if env.clock() >= deadline:
            raise StepFailed("increase: the rings were pushed, but not every proxy uses "
                             "them yet: " + "; ".join(f"{n}: {why}" for n, why in
                                                      sorted(behind.items()))
                             + "; run the same command again once they do (the cleanup "
                               "waits for it)")
        env.sleep(min(env.poll_interval, 1.0))
