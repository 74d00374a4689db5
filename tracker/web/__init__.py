"""The web adapter, the only Streamlit code of the engine: the cached database and what a save changes
(caching), every read (reads) and write (writes) a page makes, the signed-in session (session), what the server
does ahead of its visitors (warming), and the HTTP routes beside the app (server, server_paths). Pages import this
package and nothing below it but the views' shapes, the chart builders and the viewer. May import everything
below it.
"""
