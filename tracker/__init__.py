"""Milestone's engine, importable without Streamlit but for its web adapter: one package per concern, imports
running one way only (pyproject.toml, [tool.importlinter]; docs/architecture.md), from the top:

    __main__, cli   `python -m tracker ...`
    web             the Streamlit adapter and the HTTP routes: what the pages call
    views           what a page shows, read in one call (a learner's progress)
    accounts        sign-in accounts, sessions, one-time links   |  reports: charts and PDF packets
    mail            e-mail and reminder digests                  |  review: the committee's meetings and decisions
    records         imports, exports, the rules every write obeys, the app's writes of ratings and evidence
    analysis        standings, trajectories, the forecast, coverage |  plans: learning plans
    access          who may see and do what
    storage         the database: schema, the one write path, the embedded file and server mode's copy
    framework       the competency framework: loading it, and its interchange formats
    core            settings, errors, text from people
"""
