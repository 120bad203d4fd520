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
