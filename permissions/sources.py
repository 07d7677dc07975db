"""Reading a JSON input from a local file or an https:// URL.

Every failure is a SourceError whose message is one line naming the location, so that a
management command can print it as it is.
"""

import json
from pathlib import Path

import requests

# Microsoft's permissions.json is about 3 MB; a slow mirror still gets there in time.
TIMEOUT_SECONDS = 60


class SourceError(Exception):
    """A location could not be read as JSON."""


def load_json(location: str) -> object:
    if location.startswith("https://"):
        raw = _fetch(location)
    elif "://" in location:
        raise SourceError(f"{location}: only local files and https:// URLs can be read")
    else:
        raw = _read_file(location)
    try:
        # utf-8-sig: files written by PowerShell (as EntraOps' are) may start with a BOM.
        return json.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise SourceError(f"{location}: not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise SourceError(
            f"{location}: not JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"
        ) from None


def _read_file(location: str) -> bytes:
    try:
        return Path(location).read_bytes()
    except FileNotFoundError:
        raise SourceError(f"{location}: not found") from None
    except IsADirectoryError:
        raise SourceError(f"{location}: is a directory, not a file") from None
    except OSError as exc:
        raise SourceError(f"{location}: cannot be read ({exc.strerror})") from None


def _fetch(location: str) -> bytes:
    try:
        response = requests.get(location, timeout=TIMEOUT_SECONDS)
    except requests.Timeout:
        raise SourceError(f"{location}: no answer within {TIMEOUT_SECONDS} s") from None
    except requests.RequestException as exc:
        raise SourceError(f"{location}: cannot connect ({type(exc).__name__})") from None
    if response.status_code != 200:
        raise SourceError(f"{location}: HTTP {response.status_code} {response.reason}".rstrip())
    return response.content
