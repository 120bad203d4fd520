pytest_plugins = ["tests.helpers.sshd_fixtures", "tests.helpers.lab_fixture", "tests.helpers.users"]
