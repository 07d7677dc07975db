"""Table headings that sort: a link per column that keeps the page's filters."""

from dataclasses import dataclass


@dataclass(frozen=True)
class SortHeader:
    """A column heading that sorts the table by its column: most telling first, and the
    other way round when it already sorts so (a ``sort`` of "-key")."""

    key: str
    label: str
    # The ``sort`` its link asks for, and how the table is sorted by it now (aria-sort:
    # "ascending", "descending" or "" when it sorts by another column).
    link: str
    aria_sort: str


# Names sort from A, numbers from the highest.
ASCENDING_FIRST = {"name"}


def sort_headers(current: str, columns: list[tuple[str, str]]) -> dict[str, SortHeader]:
    """Per column key, its heading, given the ``sort`` the page is shown with."""
    headers = {}
    for key, label in columns:
        natural = "ascending" if key in ASCENDING_FIRST else "descending"
        other = "descending" if natural == "ascending" else "ascending"
        if current == key:
            headers[key] = SortHeader(key, label, f"-{key}", natural)
        elif current == f"-{key}":
            headers[key] = SortHeader(key, label, key, other)
        else:
            headers[key] = SortHeader(key, label, key, "")
    return headers
