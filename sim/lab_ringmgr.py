"""The lab's ringmgr.toml (CONTRACT.md's schema) and the export lines ``sim/lab up``
prints.  Every lab node is this machine: the config gives each node the lab's simulated
reboot as its ``reboot_command``, and is refused (``UnsafeConfig``) otherwise."""

from __future__ import annotations

import json
import os
import sys
import tomllib
from pathlib import Path

from sim import lab_configs as cfg


class UnsafeConfig(ValueError):
    """The ringmgr.toml about to be written could act on this machine itself."""


def _q(s: str) -> str:
    return json.dumps(s)


def reboot_command(lab: cfg.Lab, node: cfg.LabNode) -> list[str]:
    """What ``ringmgr reboot-node`` runs on a lab node: the lab's simulated reboot.

    Every lab node is this machine, reached over SSH: ringmgr's default ``systemctl
    reboot`` would reboot the host.  ``sim/lab reboot`` instead stops the node's servers
    and its own sshd, keeps it unreachable for a while, then starts them again (the
    boot id cannot change on a shared kernel: ringmgr judges "back" by down-then-up).
    ``setsid --fork`` detaches it from the SSH session that its own sshd's stop ends.
    """
    return ["setsid", "--fork", sys.executable, str(cfg.LAB_SCRIPT), "reboot", node.name,
            "--state", lab.state, "--down-for", f"{cfg.REBOOT_DOWN_FOR:g}"]


def is_lab_reboot(cmd: list, lab: cfg.Lab, node: cfg.LabNode) -> bool:
    """Is ``cmd`` the lab's simulated reboot of ``node`` in this lab: ``setsid --fork
    PYTHON <this sim/lab> reboot NODE --state STATE [--down-for S]``, nothing else?
    Spelled out here, not compared with ``reboot_command``: it checks that too."""
    if len(cmd) not in (8, 10) or not all(isinstance(a, str) for a in cmd):
        return False
    head = cmd[:2] == ["setsid", "--fork"] and os.path.basename(cmd[2]).startswith("python")
    target = (Path(cmd[3]) == cfg.LAB_SCRIPT and cmd[4:8] == ["reboot", node.name, "--state",
                                                          lab.state])
    rest = cmd[8:]
    if rest:
        try:
            ok_rest = rest[0] == "--down-for" and 0 <= float(rest[1]) <= 3600
        except ValueError:
            ok_rest = False
    else:
        ok_rest = True
    return head and target and ok_rest


def unsafe_reboot_commands(lab: cfg.Lab, config: dict) -> list[str]:
    """Why ``config`` (a parsed ringmgr.toml) could reboot this machine: one reason per
    node whose effective reboot_command is not the lab's simulated reboot of that very
    node.  A whitelist, not a list of dangerous commands: anything else refused."""
    defaults = config.get("defaults", {}).get("reboot_command")
    by_name = {n.name: n for n in lab.nodes}
    reasons = []
    for name, section in sorted(config.get("nodes", {}).items()):
        cmd = section.get("reboot_command", defaults)
        node = by_name.get(name)
        if cmd is None:
            reasons.append(f"nodes.{name} has no reboot_command: ringmgr's default "
                           f"`systemctl reboot` would reboot this machine")
        elif node is None or not is_lab_reboot(list(cmd), lab, node):
            reasons.append(f"nodes.{name}.reboot_command {cmd!r} is not the lab's simulated "
                           f"reboot of {name} (`sim/lab reboot {name}`): on a lab node it "
                           f"would run on this machine")
    return reasons


def ringmgr_toml(lab: cfg.Lab) -> str:
    """The ringmgr configuration for this lab (CONTRACT.md's schema).

    ``lab.ssh`` (identity_file, known_hosts, port) is set when sshd test hosts run for
    the nodes; without it [ssh] is left out and ringmgr's push/verify cannot reach the lab.
    Raises UnsafeConfig rather than return a config whose reboot_command could reboot
    this machine (``unsafe_reboot_commands``).
    """
    ssh = lab.ssh
    ports = ", ".join(f"{r} = {p}" for r, p in sorted(cfg.PORTS.items()))
    out = [
        "# Written by sim/lab up for the rehearsal lab in this directory.",
        "[cluster]",
        f"builder_dir = {_q(lab.builder_dir)}",
        f"swift_conf = {_q(lab.builder_dir + '/swift.conf')}",
        f"ports = {{ {ports} }}",
        f"ring_reload = {float(lab.ring_reload)!r}",
        *(["measure_usage = true"] if ssh else []),
        "",
    ]
    if ssh:
        out += ["[ssh]", 'user = "root"', f"port = {int(ssh['port'])}",
                f"identity_file = {_q(str(ssh['identity_file']))}",
                f"known_hosts = {_q(str(ssh['known_hosts']))}", "parallel = 16",
                "connect_timeout = 5.0", ""]
    out += ["[defaults]", 'owner = "root:root"',
            f"mount_check = {'true' if lab.xfs else 'false'}", ""]
    for node in lab.nodes:
        devs = ", ".join(f"{d} = {cfg.WEIGHT}" for d in node.devices)
        out += [
            f"[nodes.{node.name}]",
            f"host = {_q(node.ip)}",
            f"ip = {_q(node.ip)}",
            "region = 1",
            f"zone = {node.zone}",
            f"devices = {{ {devs} }}",
            f"swift_dir = {_q(node.swift_dir)}",
            f"mount_root = {_q(node.mount_root)}",
            f"fstab = {_q(node.fstab)}",
            # swift's tools on a lab node: the lab's python, pointed at its swift.conf
            "swift_command_prefix = [" + ", ".join(_q(a) for a in cfg.swift_command_prefix(node))
            + "]",
            f"run_dir = {_q(node.root + '/var/lib/ringmgr')}",
        ]
        reboot = reboot_command(lab, node)
        if reboot is not None:  # (the check below refuses a node without one)
            out.append("reboot_command = [" + ", ".join(_q(a) for a in reboot) + "]")
        blocks = lab.block_devices.get(node.name)
        if blocks:
            out.append("block_devices = { " + ", ".join(
                f"{d} = {_q(b)}" for d, b in sorted(blocks.items())) + " }")
        out.append("")
    out += ["[proxies.proxy]", f"host = {_q(lab.proxy_ip)}", f"swift_dir = {_q(lab.proxy_dir)}",
            f"endpoints_url = {_q(lab.proxy_url + '/endpoints')}", ""]
    out += ["[recon]             # every lab server runs the recon middleware",
            "timeout = 5.0", "connect_timeout = 2.0", ""]
    text = "\n".join(out)
    reasons = unsafe_reboot_commands(lab, tomllib.loads(text))
    if reasons:
        raise UnsafeConfig("refusing to write ringmgr.toml: " + "; ".join(reasons))
    return text


def exports(lab: cfg.Lab) -> str:
    return "\n".join([
        f"export RINGMGR_CONFIG={lab.config_path}",
        f"export ST_AUTH={lab.auth_url}",
        f"export ST_USER={cfg.USER}",
        f"export ST_KEY={cfg.KEY}",
    ]) + "\n"
