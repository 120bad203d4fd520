"""What the live cluster says is already down, for ok-to-stop and its relatives.

One recon sweep (``/recon/unmounted`` of every account, container and object server in
the rings): a server that does not answer counts as down (every device it serves, by
ip and port), and a device recon reports unmounted counts as down on nodes whose
servers run with ``mount_check = true`` (the node key; recon reports any directory
that is not a mount point, whatever the servers' setting).  Answers that are not
recon (an error page) count the server as down too: it cannot be shown to serve.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class LiveDown:
    servers: set = field(default_factory=set)      # (ip, port)
    devices: set = field(default_factory=set)      # (ip, device)
    lines: list = field(default_factory=list)      # one per finding, naming it

    def to_json(self) -> dict:
        return {"servers_down": sorted(f"{ip}:{port}" for ip, port in self.servers),
                "devices_unmounted": sorted(f"{ip}/{d}" for ip, d in self.devices),
                "notes": list(self.lines)}


def live_down(config, builders: dict, *, transport=None) -> LiveDown:
    """Sweep the servers of ``builders`` (ring name -> builder)."""
    from ringmgr.live.recon import ReconClient, servers_from_devices

    devs = {r: [d for d in b.devs if d is not None] for r, b in builders.items()}
    servers = servers_from_devices(devs, config)
    # the override port is where recon answers; the ring's port is what devices use
    ring_port = {}
    for ring, ds in devs.items():
        for s in servers_from_devices({ring: ds}, config):
            for d in ds:
                if d["ip"] == s.ip:
                    ring_port.setdefault(s, set()).add(d["port"])
    sweep = ReconClient(config.recon, transport=transport).sweep(
        [(s, "unmounted") for s in servers])
    out = LiveDown()
    by_ip = {n.ip: n for n in config.nodes.values()}
    in_rings = {(d["ip"], d["device"]) for ds in devs.values() for d in ds}
    for s in servers:
        r = sweep.get(s, "unmounted")
        if not r.ok:
            for port in sorted(ring_port.get(s, {s.port})):
                out.servers.add((s.ip, port))
            out.lines.append(f"{s.node}: {s.kind} server {s.ip}:{s.port} counted as down "
                             f"(recon: {r.error})")
            continue
        node = by_ip.get(s.ip)
        if node is not None and not node.mount_check:
            continue
        for dev in r.value:
            if (s.ip, dev) in in_rings and (s.ip, dev) not in out.devices:
                out.devices.add((s.ip, dev))
                out.lines.append(f"{s.node}: {dev} counted as down (recon: unmounted, "
                                 f"mount_check = true)")
    return out
