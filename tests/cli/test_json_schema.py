"""Every command's --json report has a published schema (docs/schema/) and matches it:
the schema files are checked, every click command is walked, and commands are run for
real (success, a refusal, a usage error).  The autouse fixture in conftest.py also checks
every --json report any other test produces against the same schemas."""

import json

import pytest

from ringmgr.cli.main import cli
from ringmgr.errors import REASONS
from tests.helpers import json_schema as js
from tests.helpers.cli import run_cli
from tests.helpers.ringfactory import lock_held, make_cluster

COMMANDS = js.leaf_commands(cli)


@pytest.fixture(autouse=True)
def hash_suffix(monkeypatch):
    import swift.common.utils as u

    monkeypatch.setattr(u, "HASH_PATH_SUFFIX", b"ringmgr-tests")


def check(path: tuple, r, exit_code=None, reason=None) -> dict:
    """The report on stdout is one JSON document matching the command's schema."""
    doc = json.loads(r.stdout)
    problems = js.errors(js.schema_name(path), doc)
    assert not problems, problems
    assert doc["exit_code"] == r.exit_code
    if exit_code is not None:
        assert r.exit_code == exit_code, r.output
    if reason is not None:
        assert doc["reason"] == reason, doc
    return doc


def test_the_command_walk_finds_nested_commands():
    assert {("compute", "evacuate"), ("controller", "check"), ("history",),
            ("history", "show"), ("status",)} <= set(COMMANDS)
    assert ("compute",) not in COMMANDS  # a group that only lists its commands


def test_every_command_has_a_valid_schema_that_builds_on_the_envelope():
    from jsonschema import Draft202012Validator

    missing = [" ".join(p) for p in COMMANDS
               if not (js.SCHEMA_DIR / f"{js.schema_name(p)}.json").exists()]
    assert not missing, f"no schema in docs/schema/ for: {', '.join(missing)}"
    for path in COMMANDS:
        schema = json.loads((js.SCHEMA_DIR / f"{js.schema_name(path)}.json").read_text())
        Draft202012Validator.check_schema(schema)
        assert {"$ref": "envelope.json"} in schema["allOf"], path
        assert schema["unevaluatedProperties"] is False, path  # every key is documented
    known = {js.schema_name(p) for p in COMMANDS} | {"envelope", "common"}
    extra = {p.stem for p in js.SCHEMA_DIR.glob("*.json")} - known
    assert not extra, f"schemas for no command: {extra}"


def test_the_envelope_lists_exactly_the_documented_reasons():
    env = json.loads((js.SCHEMA_DIR / "envelope.json").read_text())
    assert env["properties"]["reason"]["enum"] == list(REASONS)
    doc = (js.SCHEMA_DIR.parent / "json.md").read_text()
    for reason in REASONS:
        assert f"`{reason}`" in doc, reason


def test_the_schema_rejects_what_it_should():
    ok = {"written": False, "exit_code": 0, "reason": "ok", "message": None, "warnings": [],
          "errors": [], "next": [], "history": []}
    assert js.errors("history", ok) == []
    assert js.errors("history", {**ok, "surprise": 1})           # undocumented key
    assert js.errors("history", {**ok, "reason": "fine"})        # not in the closed set
    assert js.errors("history", {**ok, "exit_code": 2})          # exit 2 without errors
    assert js.errors("history", {**ok, "next": [{"command": "ringmgr push",
                                                 "not_before": "tomorrow"}]})
    assert js.errors("push", {**{k: v for k, v in ok.items() if k != "history"},
                              "ok": True, "failed": [], "hosts": [{"node": "s01"}]})


@pytest.mark.parametrize("path", sorted(COMMANDS), ids=" ".join)
def test_a_usage_error_still_prints_the_envelope(path, cluster):
    """An unknown option: click fails before the command runs, often before it has seen
    --json; stdout still carries the envelope."""
    r = run_cli(cluster, *path, "--json", "--no-such-option")
    doc = check(path, r, 2, "usage")
    # set-weight takes unknown options as arguments (a weight may look like an option)
    assert "--no-such-option" in doc["errors"][0] or "argument" in doc["errors"][0]
    assert doc["written"] is False
    assert "ringmgr: error: " in r.stderr


@pytest.mark.parametrize("path", sorted(p for p, c in COMMANDS.items()
                                        if any(a.required for a in c.params
                                               if a.param_type_name == "argument")),
                         ids=" ".join)
def test_a_missing_argument_prints_the_envelope(path, cluster):
    r = run_cli(cluster, "--json", *path)
    doc = check(path, r, 2, "usage")
    assert "Missing argument" in doc["message"]


def test_usage_error_before_the_command_name(cluster):
    r = run_cli(cluster, "--json", "--no-such-option", "status")
    doc = json.loads(r.stdout)
    assert js.errors("envelope", doc) == [] and doc["reason"] == "usage"


# -- real runs: success and refusal per command ----------------------------------------

RING_CHANGES = [
    ("remove-node", "s03"), ("remove-device", "s01", "sdc"), ("set-weight", "s02/sdb", "50"),
    ("add-node", "s07"), ("add-node", "s07", "--max-move", "20"),
    ("drain-node", "s03", "--max-move", "20"), ("shutdown-node", "s04"),
    ("set-info", "s01", "--meta", "rack 1"), ("set-zone", "s02", "3"),
    ("set-region", "s02/sdb", "2"), ("set-overload", "0.1"),
    ("set-replicas", "account", "4"), ("set-min-part-hours", "object", "3"),
]


@pytest.mark.parametrize("args", RING_CHANGES, ids=" ".join)
def test_ring_changes_dry_run_real_run_and_refusal(args, cluster):
    path = (args[0],)
    before = cluster.checksums()
    doc = check(path, run_cli(cluster, "--json", *args, "--dry-run", "--seed", "3"), 0, "ok")
    assert doc["written"] is False and doc["rings"] and doc["seed"] == 3
    # the dry run says how to do it for real, with the same seed
    assert doc["next"][0]["command"].endswith("--seed 3") and "--dry-run" not in \
        doc["next"][0]["command"]
    # no terminal, no --yes: refused, nothing written
    doc = check(path, run_cli(cluster, "--json", *args, "--seed", "3"), 2, "refused")
    assert "--yes" in doc["errors"][0] and cluster.checksums() == before
    doc = check(path, run_cli(cluster, "--json", *args, "--seed", "3", "--yes"))
    assert doc["written"] is True and doc["change_id"] == 1
    assert doc["reason"] in ("ok", "unbalanced", "replication_pending")
    assert any(n["command"].endswith(" push") for n in doc["next"])


def test_read_only_and_history_commands(cluster):
    check(("status",), run_cli(cluster, "--json", "status"), 0, "ok")
    check(("history",), run_cli(cluster, "--json", "history"), 0, "ok")
    check(("resume",), run_cli(cluster, "--json", "resume"), 0, "nothing_to_do")
    check(("write-rings",), run_cli(cluster, "--json", "write-rings"), 0, "nothing_to_do")
    check(("ok-to-stop",), run_cli(cluster, "--json", "ok-to-stop", "s01"), 0, "ok")
    check(("failure-impact",), run_cli(cluster, "--json", "failure-impact", "s01", "s02"), 0, "ok")
    check(("restore-order",), run_cli(cluster, "--json", "restore-order"), 0, "ok")
    check(("schedule",), run_cli(cluster, "--json", "schedule", "--no-checks"), 0, "ok")
    check(("rebalance",), run_cli(cluster, "--json", "rebalance", "--yes"), 1, "nothing_to_do")
    doc = check(("history", "show"), run_cli(cluster, "--json", "history", "show", "1"), 2, "usage")
    assert "no change #1" in doc["errors"][0]
    check(("rollback",), run_cli(cluster, "--json", "rollback", "--dry-run"), 2, "usage")
    assert run_cli(cluster, "remove-node", "s05", "--yes").exit_code in (0, 1)
    doc = check(("history",), run_cli(cluster, "--json", "history"), 0, "ok")
    assert doc["history"][0]["pushes"] == []
    check(("history", "show"), run_cli(cluster, "--json", "history", "show", "1"), 0, "ok")
    check(("rollback",), run_cli(cluster, "--json", "rollback", "--dry-run"), 0, "ok")
    check(("write-rings",), run_cli(cluster, "--json", "write-rings", "--dry-run"), 0,
          "nothing_to_do")
    check(("status",), run_cli(cluster, "--json", "status"), 0, "ok")
    doc = check(("rollback",), run_cli(cluster, "--json", "rollback", "--yes"), 0, "ok")
    assert doc["written"] is True


def test_gate_closed_and_lock_held(tmp_path, monkeypatch):
    monkeypatch.setenv("RINGMGR_LOG", str(tmp_path / "audit.log"))
    c = make_cluster(tmp_path, min_part_hours=24, gate_open=False)
    doc = check(("set-weight",), run_cli(c, "--json", "set-weight", "s01", "50", "--yes"), 1,
                "gate_closed")
    assert doc["written"] is False and doc["next"][0]["not_before"]
    doc = check(("drain-node",), run_cli(c, "--json", "drain-node", "s01", "--dry-run"), 1,
                "gate_closed")
    assert doc["steps"] and doc["next"][0]["not_before"]
    with lock_held(c.builder_dir, by="ringmgr"):
        doc = check(("remove-node",), run_cli(c, "--json", "remove-node", "s01", "--yes"), 2,
                    "locked")
    assert doc["written"] is False


def test_bad_config_and_bad_builder(cluster):
    (cluster.builder_dir / "object.builder").write_bytes(b"not a pickle")
    doc = check(("status",), run_cli(cluster, "--json", "status"), 2, "builder_error")
    assert "object.builder" in doc["errors"][0]
    cluster.config.write_text(cluster.config.read_text() + "\n[cluster2]\n")
    check(("status",), run_cli(cluster, "--json", "status"), 2, "config")


def test_read_only_ring_views(cluster, tmp_path):
    out = tmp_path / "imported.toml"
    check(("import",), run_cli(cluster, "--json", "import", str(cluster.builder_dir)), 0, "ok")
    doc = check(("import",), run_cli(cluster, "--json", "import", str(cluster.builder_dir), "-o",
                                 str(out)), 0, "ok")
    assert doc["output"] == str(out) and out.read_text() == doc["config"]
    check(("import",), run_cli(cluster, "--json", "import", str(tmp_path)), 2, "builder_error")
    obj = str(cluster.builder_dir / "object.builder")
    doc = check(("diff",), run_cli(cluster, "--json", "diff", obj, obj), 0, "ok")
    assert doc["same"] is True
    assert run_cli(cluster, "remove-node", "s05", "--yes").exit_code in (0, 1)
    doc = check(("diff",), run_cli(cluster, "--json", "diff", "1", "object-1"), 1, "check_failed")
    assert doc["same"] is False and doc["rings"]["object-1"]["moves"]["moved"] == 0
    backup = next((cluster.builder_dir / "backups").glob("*.object.builder"))
    doc = check(("diff",), run_cli(cluster, "--json", "diff", str(backup), obj), 1, "check_failed")
    assert doc["rings"]["object"]["devices"]["removed"]
    check(("diff",), run_cli(cluster, "--json", "diff", str(cluster.config), obj), 2, "usage")
    doc = check(("dump",), run_cli(cluster, "--json", "dump", "object"), 0, "ok")
    assert doc["dump"].startswith("# ringmgr dump object")
    check(("create",), run_cli(cluster, "--json", "create", "--dry-run"), 2, "usage")


def test_apply_and_simulate(cluster, tmp_path):
    plan = tmp_path / "plan.json"
    check(("remove-node",), run_cli(cluster, "--json", "remove-node", "s03", "--plan-out",
                                str(plan)), 0, "ok")
    check(("apply",), run_cli(cluster, "--json", "apply", str(plan), "--dry-run"), 0, "ok")
    doc = check(("apply",), run_cli(cluster, "--json", "apply", str(plan), "--yes"), 0, "ok")
    assert doc["written"] is True
    assert f"plan:     {plan}" in run_cli(cluster, "history", "show", "1").stdout
    check(("apply",), run_cli(cluster, "--json", "apply", str(plan), "--yes"), 2, "refused")
    scenario = tmp_path / "s.toml"
    scenario.write_text('seed = 1\n[[round]]\nname = "out"\nchanges = [{ remove = "s02" }]\n')
    check(("simulate",), run_cli(cluster, "--json", "simulate", str(scenario)), 0, "ok")
