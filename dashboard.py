"""Milestone: the Streamlit entry point. `streamlit run dashboard.py` serves `app` below (an st.App): every browser
session runs pages/views/session.py (sign in, then the navigation of the viewer's roles, pages.views.navigation),
beside the HTTP routes of tracker/web/server.py (the HttpOnly session cookie, a health check) and one handler that
turns an uncaught error into a message. Run as a script (AppTest, or `streamlit run` of an older Streamlit), it
runs the same session directly.
"""

from pathlib import Path

import streamlit as st

if __name__ == "__main__":
    from pages.views.navigation import main

    main()
else:
    # Nothing that defines a cached function is imported here: `streamlit run` reads this file before its runtime
    # exists, and a cached function defined then is set up outside it (and says so in the log, once per function).
    # The pages and the web adapter load in the runtime: the session script and the server's start import them.
    from tracker.web import server

    app = st.App(
        Path(__file__).resolve().parent / "pages" / "views" / "session.py",
        routes=server.routes(),
        lifespan=server.lifespan,
        on_script_error=server.on_script_error,
    )
