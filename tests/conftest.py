import pytest


@pytest.fixture(autouse=True)
def _isolated_media(settings, tmp_path):
    # Tests never write into the developer's var/ (e-mails, broker files).
    settings.EMAIL_FILE_PATH = tmp_path / "outbox"
