"""The forecast service behind ``sca2lstm serve``: FastAPI app (app.py), SQLite store (store.py),
request and response models (schemas.py) and the offline web page (static/)."""
