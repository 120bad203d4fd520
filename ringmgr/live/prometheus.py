"""The health report as node_exporter textfile metrics (``health --prometheus FILE``).

Written with prometheus-client's ``write_to_textfile``, which writes a temporary file
next to FILE and renames it over FILE: node_exporter never reads half a file.  One
registry per call (no module state).  Every metric is a gauge named ``ringmgr_...``
with ``node`` (and ``server``, ``device``, ``ring``) labels.
"""

from __future__ import annotations


def write_textfile(path, report) -> None:
    from prometheus_client import CollectorRegistry, Gauge, write_to_textfile

    reg = CollectorRegistry()

    def g(name, doc, labels=()):
        return Gauge(f"ringmgr_{name}", doc, list(labels), registry=reg)

    up = g("recon_up", "1 if the server answered recon", ("node", "server"))
    r_end = g("replication_last_end_timestamp_seconds",
              "end of the last replication (or reconstruction) pass", ("node", "server"))
    r_start = g("replication_last_start_timestamp_seconds",
                "start of the last replication (or reconstruction) pass", ("node", "server"))
    r_took = g("replication_duration_seconds", "duration of the last pass", ("node", "server"))
    r_fail = g("replication_failures", "failures in the last pass", ("node", "server"))
    size = g("device_size_bytes", "filesystem size", ("node", "device"))
    used = g("device_used_bytes", "filesystem bytes used", ("node", "device"))
    avail = g("device_avail_bytes", "filesystem bytes available", ("node", "device"))
    unm = g("device_unmounted", "1 if recon reports the device unmounted and the node "
                                "runs with mount_check", ("node", "device"))
    asyncp = g("async_pending", "async pendings", ("node",))
    quar = g("quarantined", "quarantined items", ("node", "type"))
    ring_ok = g("ring_md5_match", "1 if the node's ring file equals the admin host's",
                ("node", "ring"))
    conf_ok = g("swift_conf_md5_match", "1 if swift.conf equals the admin host's", ("node",))
    skew = g("clock_skew_seconds", "node clock minus the admin host's", ("node",))
    audit = g("drive_audit_errors", "errors found by swift-drive-audit", ("node",))
    relink = g("relinker_parts_done_ratio", "swift-object-relinker progress",
               ("node", "device", "policy", "step"))
    problems = g("health_problems", "problems found by ringmgr health", ("severity",))
    g("health_checked_timestamp_seconds", "when the sweep ran").set(report.checked_at)

    for node, n in report.nodes.items():
        for kind, s in n["servers"].items():
            up.labels(node, kind).set(1 if s["up"] else 0)
        for kind, p in n["replication"].items():
            for gauge, key in ((r_end, "end"), (r_start, "start"), (r_took, "duration"),
                               (r_fail, "failures")):
                if p[key] is not None:
                    gauge.labels(node, kind).set(p[key])
        for d in n["devices"]:
            if d["mounted"]:
                size.labels(node, d["device"]).set(d["size"])
                used.labels(node, d["device"]).set(d["used"])
                avail.labels(node, d["device"]).set(d["avail"])
        if n["mount_check"]:
            for d in n["devices"]:
                unm.labels(node, d["device"]).set(1 if d["device"] in n["unmounted"] else 0)
        if n["async_pending"] is not None:
            asyncp.labels(node).set(n["async_pending"])
        for kind, count in (n["quarantined"] or {}).items():
            quar.labels(node, kind).set(count)
        for ring, r in n["rings"].items():
            ring_ok.labels(node, ring).set(1 if r["state"] == "ok" else 0)
        if n["swift_conf"] and n["swift_conf"]["state"] is not None:
            conf_ok.labels(node).set(1 if n["swift_conf"]["state"] == "ok" else 0)
        if n["clock_skew"] is not None:
            skew.labels(node).set(n["clock_skew"])
        if n["drive_audit_errors"] is not None:
            audit.labels(node).set(n["drive_audit_errors"])
        for d in n["relinker"]:
            if d["total_parts"]:
                relink.labels(node, d["device"], "" if d["policy"] is None else
                              str(d["policy"]), d["step"] or "").set(
                    d["parts_done"] / d["total_parts"])
    for sev in ("error", "warning"):
        problems.labels(sev).set(sum(p.severity == sev for p in report.problems))
    write_to_textfile(str(path), reg)
