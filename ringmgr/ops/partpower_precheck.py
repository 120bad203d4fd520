"""The precheck phase of the partition-power increase: every node and proxy
reachable, devices mounted, inodes, reclaim_age, swift's version, the rings current and
the same everywhere; any failure refuses (exit 2) and nothing is changed."""

from __future__ import annotations

from ringmgr.errors import Refused
from ringmgr.ops import partpower_nodes as pn
from ringmgr.ops.partpower_env import Env
from ringmgr.ops.partpower_journal import phase_info
from ringmgr.rings.store import RingStore


def precheck(env: Env, j, builders: dict) -> None:
    """Every node and proxy reachable, devices mounted, inodes, reclaim_age, swift's
    version, the rings current and the same everywhere; any failure refuses (exit 2)."""
    from ringmgr.ops.push import verify_rings

    config = env.config
    store = RingStore.from_config(config)
    store.refuse_if_pending()
    problems = []
    for name, b in builders.items():
        check = store.ring_check(name, b)
        if not check.current:
            problems.append(f"{name}.ring.gz is {check.state}: write and push it first")
    nodes = pn.object_nodes(config, builders)
    figs = pn.parallel(config, nodes, lambda on: pn.precheck_node(
        on, env.executor(on.node), env.recon, env.rings))
    proxies = pn.parallel(config, config.proxies,
                          lambda p: pn.precheck_proxy(p, env.executor(p)))
    factory = env.executor_factory
    report = verify_rings(config, transport=None if factory is None else
                          (lambda _config, host, _known_hosts: factory(host)))
    for h in report.results:
        if not h.ok:
            differ = ", ".join(f"{f} {s}" for f, s in sorted(h.verify.items()) if s != "ok")
            problems.append(f"{h.node}: rings not the admin host's "
                            f"({h.error or differ or 'differ'}): push them first")
    out = {}
    for name, fig in {**figs, **proxies}.items():
        if isinstance(fig, Exception):
            problems.append(f"{name}: {pn.one_line(fig)}")
            out[name] = {"error": pn.one_line(fig)}
            continue
        problems += [f"{name}: {p}" for p in fig["problems"]]
        out[name] = fig
    for name, fig in figs.items():
        if isinstance(fig, dict):
            inodes = ", ".join(f"{d} {f['used']} used/{f['free']} free, "
                               f"{f.get('avail_kib', '?')} KiB free" if f else f"{d} ?"
                               for d, f in sorted(fig["devices"].items()))
            env.echo(f"  {name}: swift {fig['swift_version']}, reclaim_age "
                     f"{fig['reclaim_age']} s, runs as {fig['user']}, relinker config "
                     f"{fig['relinker_conf']}; inodes {inodes}")
    reclaim = [f["reclaim_age"] for f in figs.values() if isinstance(f, dict)]
    used = [d["used"] for f in figs.values() if isinstance(f, dict)
            for d in f["devices"].values() if d]
    estimate = None
    if env.opts.files_per_second and used:
        estimate = 2 * max(used) / env.opts.files_per_second   # relink + cleanup
    if reclaim:
        env.echo(f"reclaim_age {min(reclaim)} s; expected relink+cleanup "
                 + (f"about {estimate:.0f} s" if estimate is not None else
                    "not estimated (no --files-per-second; unthrottled)"))
        if estimate is not None and estimate > min(reclaim):
            short = sorted(n for n, f in figs.items() if isinstance(f, dict)
                           and f["reclaim_age"] < estimate)
            problems.append(f"reclaim_age {min(reclaim)} s is shorter than the expected "
                            f"relink and cleanup ({estimate:.0f} s at --files-per-second "
                            f"{env.opts.files_per_second:g}) on {', '.join(short)}: raise "
                            f"reclaim_age ([object-replicator] in the object-server "
                            f"config) above {estimate:.0f} s on every node first, or relink "
                            f"faster (a higher --files-per-second)")
    phase_info(j, "precheck").update(nodes=out, reclaim_age=min(reclaim) if reclaim else None,
                                estimate=estimate)
    j.set_param("phases", j.params["phases"])
    if problems:
        raise Refused("precheck failed, nothing was changed: " + "; ".join(problems))
