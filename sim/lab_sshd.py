"""The lab's SSH: one sshd test host (``sim/hosts.py``) per address, so that ringmgr
reaches every lab node as it would a real one."""

from __future__ import annotations

from sim import lab_configs as cfg
from sim.hosts import SSHHosts
from sim.lab_procs import Records, starttime


def start_sshd(lab: cfg.Lab, records: Records) -> dict | None:
    """sshd test hosts (sim/hosts.py) on the proxy's and every node's address.

    The daemons outlive this process; their pids go into procs.json like every other
    daemon's, so ``down`` stops them.  Returns the [ssh] settings for ringmgr.toml.
    """
    names = ["proxy"] + [n.name for n in lab.nodes] + [
        f"s{i:02d}" for i in range(len(lab.nodes) + 1, len(lab.nodes) + 1 + lab.spare)]
    # one sshd per address: a rehearsed reboot takes one node's SSH away, not 16 nodes'
    hosts = SSHHosts(len(names), workdir=f"{lab.state}/ssh", names=names,
                     first=cfg.PROXY_HOST_OCTET, base=f"127.0.{lab.net}.", per_daemon=1)
    try:
        hosts.start()
    finally:
        for d in hosts.daemons:
            records.add_proc({"name": f"{d['names'][0]}-sshd", "pid": d["pid"],
                              "starttime": starttime(d["pid"]),
                              "argv": [str(a) for a in d["argv"]], "log": str(d["log"])})
    return {"port": hosts.port, "identity_file": str(hosts.identity_file),
            "known_hosts": str(hosts.known_hosts), "hosts": [h.address for h in hosts.hosts],
            "sshd": {d["names"][0]: {"argv": [str(a) for a in d["argv"]], "log": str(d["log"])}
                     for d in hosts.daemons}}
