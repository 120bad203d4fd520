"""The node side of the partition-power increase: which nodes hold the rings' devices,
the precheck facts per node, and the detached relinker per node (``relinker.py``).

Every function takes an executor for the node (``Executor`` protocol) and a recon
getter, so the same code runs over SSH, in a dry run and in tests against real sshd
hosts.  Per-node work runs in parallel, at most ``[ssh].parallel`` at once; a node's
failure is collected, never fatal to the others.
"""

from __future__ import annotations

import logging
import secrets
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from ringmgr.config import Node
from ringmgr.errors import Refused
from ringmgr.ops import relinker as rl
from ringmgr.rings.partpower import policy_index

log = logging.getLogger("ringmgr.partpower")

MIN_VERSION = (2, 27)
# a look at a node (status, log tail) that takes longer is a node that does not answer:
# the connection is reused for the whole run, so a half-open one must not hold a poll
LOOK_TIMEOUT = 60.0


@dataclass
class ObjectNode:
    """A storage node with devices in the operation's rings."""

    node: Node
    devices: dict[str, list[str]] = field(default_factory=dict)   # ring -> device names
    port: int = 6200                                                # its object server

    @property
    def name(self) -> str:
        return self.node.name

    @property
    def all_devices(self) -> list[str]:
        return sorted({d for devs in self.devices.values() for d in devs})


def object_nodes(config, builders: dict) -> dict[str, ObjectNode]:
    """Nodes (by the config's ip) with devices in ``builders``; a ring device on an ip
    no node of the config has is refused (it could never be relinked)."""
    out: dict[str, ObjectNode] = {}
    stray = set()
    for ring, b in sorted(builders.items()):
        for d in b.devs:
            if d is None:
                continue
            node = config.node_by_ip(d["ip"])
            if node is None:
                stray.add(f"{ring} {d['ip']}:{d['port']}/{d['device']}")
                continue
            on = out.setdefault(node.name, ObjectNode(node, port=d["port"]))
            on.devices.setdefault(ring, [])
            if d["device"] not in on.devices[ring]:
                on.devices[ring].append(d["device"])
    if stray:
        raise Refused(f"ring devices on no node of the config: {', '.join(sorted(stray))}: "
                      f"add the node to the config (the relinker must run there); nothing "
                      f"was changed")
    return dict(sorted(out.items()))


def parallel(config, items: dict, work) -> dict:
    """``work(item)`` for every item, at most ``[ssh].parallel`` at once; an exception
    is returned in the item's place."""
    def one(item):
        try:
            return work(item)
        except Exception as e:  # noqa: BLE001 - collected per node
            log.debug("%s failed", getattr(item, "name", item), exc_info=True)
            return e

    if not items:
        return {}
    n = max(1, min(config.ssh.parallel, len(items)))
    with ThreadPoolExecutor(max_workers=n, thread_name_prefix="ringmgr-partpower") as pool:
        results = list(pool.map(one, items.values()))
    return dict(zip(items, results))


def one_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[-1] if text else type(e).__name__


def read_conf(ex, node) -> rl.ObjectConf:
    r = ex.run(["cat", node.object_conf], mutates=False, check=False)
    if r.rc != 0:
        raise Refused(f"cannot read {node.object_conf} (nodes.{node.name}."
                      f"object_server_conf): {(r.stderr or r.stdout).strip()[-200:]}")
    return rl.parse_object_conf(r.stdout, node.object_conf)


# -- precheck -------------------------------------------------------------------------

def precheck_node(on: ObjectNode, ex, recon, rings) -> dict:
    """Facts and problems of one object node: config, reclaim_age, the relinker's config,
    swift's version, mounted devices, inodes and free space."""
    node = on.node
    fig: dict = {"problems": [], "devices": {}}
    ex.run(["true"], mutates=False)
    conf = read_conf(ex, node)
    fig.update(reclaim_age=conf.reclaim_age, user=conf.user, mount_check=conf.mount_check,
               relinker_conf=rl.relinker_conf_path(node, conf),
               recon_cache_path=conf.recon_cache_path)
    bad = rl.conf_problem(conf)
    if bad:
        fig["problems"].append(bad)
    try:
        version = str(recon(node.ip, on.port, "version").get("version", "?"))
    except Exception as e:  # noqa: BLE001
        fig["problems"].append(f"recon does not answer: {one_line(e)}")
        version = None
    fig["swift_version"] = version
    if version is not None and rl.version_tuple(version) < MIN_VERSION:
        fig["problems"].append(f"swift {version}: the relinker's --workers, --policy and "
                               f"recon progress need swift 2.27 or later; upgrade first")
    if version is not None and conf.mount_check:
        try:
            unmounted = recon(node.ip, on.port, "unmounted")
        except Exception as e:  # noqa: BLE001
            unmounted = []
            fig["problems"].append(f"recon unmounted: {one_line(e)}")
        down = sorted({u.get("device") for u in unmounted if isinstance(u, dict)}
                      & set(on.all_devices))
        if down:
            fig["problems"].append(f"devices not mounted: {', '.join(down)}")
    paths = {d: f"{node.mount_root}/{d}" for d in on.all_devices}
    r = ex.run(rl.df_argv(list(paths.values())), mutates=False, check=False)
    per_path = rl.parse_df_per_path(r.stdout)
    for dev, path in paths.items():
        f = per_path.get(path)
        fig["devices"][dev] = f
        for why in (rl.inode_problem(dev, f), f and rl.space_problem(dev, f)):
            if why:
                fig["problems"].append(why)
    return fig


def precheck_proxy(proxy, ex) -> dict:
    ex.run(["true"], mutates=False)
    return {"problems": []}


# -- the detached relinker --------------------------------------------------------------

def ensure_relinker_conf(ex, node, conf: rl.ObjectConf, have: str | None = None) -> str:
    """The config the relinker gets: the node's own when it has [object-relinker],
    else ringmgr's (written, or rewritten when it differs from ``have``, its text
    on the node, read here when not given)."""
    if conf.has_relinker_section:
        return conf.path
    want = rl.own_relinker_conf(conf)
    path = f"{node.run_dir}/{rl.OWN_CONF}"
    if have is None:
        r = ex.run(["cat", path], mutates=False, check=False)
        have = r.stdout if r.rc == 0 else None
    if have != want:
        ex.run(rl.write_conf_argv(node), input=want)
    return path


def start_relinker(on: ObjectNode, ex, op_id: str, step: str, rings,
                   opts: rl.RelinkOptions, retry_failed: bool = False) -> dict:
    """Start the step on the node, or find it running or finished: never a second one."""
    node = on.node
    # the config, ringmgr's relinker config and the state in one round trip
    own_path = f"{node.run_dir}/{rl.OWN_CONF}"
    token = "ringmgr-" + secrets.token_hex(8)
    out = ex.run(rl.gather_argv(node, op_id, step, [node.object_conf, own_path], token),
                 mutates=False, check=False, timeout=LOOK_TIMEOUT)
    (text, own), st = rl.parse_gather(out.stdout, token, [node.object_conf, own_path])
    conf = (rl.parse_object_conf(text, node.object_conf) if text is not None
            else read_conf(ex, node))          # read again: its error names the cause
    if rl.conf_problem(conf):
        raise Refused(rl.conf_problem(conf))
    if st.state == "error":
        st = rl.parse_state(ex.run(rl.status_argv(node, op_id, step), mutates=False).stdout)
    if st.state == "finished" and st.rc != 0 and retry_failed:
        ex.run(["rm", "-f", f"{rl.run_dir(node, op_id)}/{step}.rc"])
        st = rl.RunState("none")
    if st.state in ("finished", "running"):
        return {**st.to_json(), "found": True}
    conf_path = ensure_relinker_conf(ex, node, conf, have=own)
    local = rl.RelinkOptions(opts.files_per_second, opts.workers,
                             tuple(d for d in opts.devices if d in on.all_devices)
                             if opts.devices else (), opts.stats_interval)
    argv = rl.relinker_argv(node, step, rings, conf_path, local)
    st = rl.parse_state(ex.run(rl.start_argv(node, op_id, step, argv)).stdout)
    return {**st.to_json(), "found": False, "argv": argv,
            "restarted": st.state == "started" and retry_failed}


def relinker_state(on: ObjectNode, ex, recon, op_id: str, step: str, rings, *,
                   wait: float = 0.0, ask_recon: bool = True) -> dict:
    """The node's step: running / finished (rc) / died, and recon's progress per device
    and policy; ``done`` when it exited 0 and recon shows nothing incomplete.

    ``wait``: the node answers when a running step ends, else after ``wait`` seconds.
    Without ``ask_recon`` a step still running is not asked about on recon
    (``progress`` is then None: unchanged); an ended one always is."""
    node = on.node
    st = rl.parse_state(ex.run(rl.status_argv(node, op_id, step, wait), mutates=False,
                               timeout=LOOK_TIMEOUT + wait).stdout)
    out = st.to_json()
    out["progress"], incomplete = None, []
    if ask_recon or st.state != "running":
        try:
            data = recon(node.ip, on.port, "relinker")
        except Exception as e:  # noqa: BLE001
            data, out["recon_error"] = None, one_line(e)
        progress = rl.relinker_progress(data, step, on.all_devices,
                                        [policy_index(r) for r in sorted(rings)])
        out["progress"] = progress
        incomplete = rl.progress_incomplete(progress)
    out["incomplete"] = incomplete
    if st.state == "finished" and st.rc != 0:
        tail = ex.run(rl.tail_argv(node, op_id, step), mutates=False, check=False,
                      timeout=LOOK_TIMEOUT).stdout
        out["log_tail"] = tail.strip().splitlines()[-5:]
    out["done"] = st.state == "finished" and st.rc == 0 and not incomplete
    if st.state == "finished" and st.rc == 2:
        out["error"] = ("the relinker found no policy to work on: the node's rings are not "
                        "the ones pushed, or swift.conf lacks the policy")
    elif st.state == "finished" and st.rc not in (0, None):
        out["error"] = f"the relinker exited {st.rc}"
    elif st.state == "finished" and incomplete:
        out["error"] = "exited 0 but recon shows " + "; ".join(incomplete)
    elif st.state == "none":
        out["error"] = ("not running and never started for this operation (another "
                        "relinker held the node's lock?)")
    elif st.state == "error":
        out["error"] = f"cannot tell: {st.msg}"
    elif st.state == "died":
        out["error"] = "the relinker is gone without an exit code (killed, or the node " \
                       "rebooted): running the phase again restarts it"
    return out
