pytest_plugins = ["tests.helpers.sshd_fixtures", "tests.helpers.lab_fixture",
                  "tests.helpers.users"]


import pytest  # noqa: E402

_FIGURES = pytest.StashKey[list]()


@pytest.fixture
def figures(request):
    """``figures(name, text)``: a figure to show in the test run's summary (the CI log),
    also when the test passes and its output is captured."""
    store = request.config.stash.setdefault(_FIGURES, [])
    return lambda name, text: store.append(f"{name}: {text}")


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    lines = config.stash.get(_FIGURES, [])
    if lines:
        terminalreporter.section("figures")
        for line in lines:
            terminalreporter.write_line(line)


@pytest.fixture(autouse=True)
def json_reports_match_their_schema(monkeypatch):
    """Every --json report any test produces in-process is checked against the published
    schema (docs/schema/<command>.json); a mismatch fails the test that produced it."""
    from ringmgr.cli.app import App
    from ringmgr.cli.main import cli
    from tests.helpers import json_schema as js

    bad = []
    original = App.envelope

    def checked(self, code):
        doc = original(self, code)
        if self.json:
            import json

            name = js.schema_for(js.command_of(self.argv, cli), cli)
            found = js.errors(name, json.loads(json.dumps(doc, default=str)))
            if found:
                bad.append(f"{' '.join(self.argv)}: {name}.json: " + "; ".join(found[:5]))
        return doc

    monkeypatch.setattr(App, "envelope", checked)
    yield
    assert not bad, "--json report does not match its schema:\n" + "\n".join(bad)


@pytest.fixture
def cluster_options():
    """make_cluster's keyword arguments for the ``cluster`` fixture (plus ``subdir``: the
    cluster under tmp_path/SUBDIR instead of tmp_path).  A test module that needs another
    cluster overrides this fixture; one that needs more around it (a swift.conf, an
    environment variable) builds on it: ``def cluster(cluster): ...; return cluster``."""
    return {}


@pytest.fixture
def cluster(tmp_path, monkeypatch, cluster_options):
    """A small real cluster (tests/helpers/ringfactory.py: builders and rings by swift's
    RingBuilder, a ringmgr.toml for their nodes), with the audit log beside it."""
    from tests.helpers.ringfactory import make_cluster

    options = dict(cluster_options)
    subdir = options.pop("subdir", None)
    root = tmp_path / subdir if subdir else tmp_path
    monkeypatch.setenv("RINGMGR_LOG", str(root / "audit.log"))
    return make_cluster(root, **options)
