"""The tests' environment, set before pytest-django imports the settings.

Loaded as a plugin (``-p tests.environment`` in pyproject.toml's pytest options) because
pytest-django reads ``portal.settings`` before any conftest.py is imported, and settings
read the environment once, at import. The tests run as ``make run`` does, with DEBUG on
(plain http on loopback, static files from the app folders, a development SECRET_KEY);
pytest-django still switches ``settings.DEBUG`` off while each test runs.
"""

import os

os.environ.setdefault("DEBUG", "1")
