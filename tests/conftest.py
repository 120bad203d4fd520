pytest_plugins = ["tests.helpers.sshd_fixtures"]
