"""The page views of the app, one module per page, each exposing render(viewer)."""
