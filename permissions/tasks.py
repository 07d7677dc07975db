"""Celery tasks of the catalog: thin wrappers around one service each."""

from celery import shared_task


@shared_task(acks_late=True)
def refresh_catalog() -> str:
    """Beat's weekly refresh from the public URLs; says how it ended.

    A failure (no network, a bad file) is recorded on its CatalogImport row and changes
    nothing: the catalog stays as it was until the next week's try.
    """
    # Imported on use, so that loading the task module (the worker, beat) loads no services.
    from permissions.catalog import catalog_refresh

    run = catalog_refresh()
    return run.status if run is not None else "another import is running"
