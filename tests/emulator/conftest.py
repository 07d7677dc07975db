"""Fixtures for the emulator's own tests: a fresh emulator per test, one CA per run."""

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from emulator import Emulator, run_emulator
from tests.emulator.helpers import bearer, get_token, session_for


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Keys are made once per run; each test still gets its own emulator and state.
    return tmp_path_factory.mktemp("emulator-data")


@pytest.fixture
def emu(data_dir: Path) -> Iterator[Emulator]:
    with run_emulator("demo", data_dir=data_dir) as emulator:
        yield emulator


@pytest.fixture
def http(emu: Emulator) -> Iterator[requests.Session]:
    with session_for(emu) as session:
        yield session


@pytest.fixture
def contoso(emu: Emulator, http: requests.Session) -> dict[str, str]:
    """Authorization headers of the portal's app in Contoso (may read and revoke)."""
    return bearer(get_token(emu, http))
