"""The script every browser session runs (dashboard.py's st.App points here).

It lives one folder below pages/ on purpose: Streamlit treats a `pages/` folder beside the running script as
legacy pages until st.navigation has run once in the server, and would answer a deep link on the first request
after a start with "Page not found". Beside this file there is no such folder.
"""

from pages.views.navigation import main

main()
