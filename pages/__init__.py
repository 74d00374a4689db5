"""One module per view; each exposes render(viewer) and has no widget code at import time."""
