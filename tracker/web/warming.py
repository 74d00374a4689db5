"""What the server does ahead of its visitors: at its start, what the first sign-in page would pay; in a thread of
its own, the committee home's agenda, drawn again when what it shows changed."""

import inspect
import threading

from tracker.access import policy
from tracker.web import caching
from tracker.web.reads import proposed_agenda
from tracker.web.session import demo_mode


def warm_up() -> None:
    """Pay while the server starts what the first sign-in page would: Python's table of which file holds which
    module (Streamlit walks the call stack once, on the first element any page draws, and the first walk looks up
    the file of every module loaded: about 1,800 here), and the sign-in page's own read. Then set aside from the
    garbage collector what the start loaded (modules, Altair's schema, the framework: they live as long as the
    server), so that a full collection, which holds Python's lock while every page waits, walks only what pages
    made since (0.1-0.2 s a collection before, bench/README.md, load test). And hand Python's lock on more often
    (SWITCH_SECONDS)."""
    import gc
    import sys

    inspect.stack()
    demo_mode()
    gc.freeze()
    sys.setswitchinterval(SWITCH_SECONDS)


# How long a thread may keep Python's lock while another waits for it (Python's default: 5 ms). A save or a query
# gives the lock up at every call into DuckDB or PostgreSQL and waits for it again while pages are drawn in other
# threads: a save of server mode makes about forty such calls. With six threads busy drawing, a save took 3.1 s
# (p50) at 5 ms and 1.2 s at 1 ms in server mode, 2.1 s and 0.4 s embedded (bench/README.md, load test).
SWITCH_SECONDS = 0.001


def keep_warm(until: threading.Event | None = None) -> None:
    """Run by the server in a thread of its own from its start: draws the committee home's whole-program agenda
    at start, after every import (or change of people or review), and when the priors are due to be learned again
    after saves (caching.PRIORS_SECONDS), so that no committee member waits for it (at 10,000 learners it takes seconds).
    A visitor who asks while it is being drawn waits for that drawing rather than starting another. Runs until
    `until` is set (the server's: never)."""
    while until is None or not until.is_set():
        try:
            viewer = policy.program_viewer(caching.cursor())
            if viewer is not None:
                proposed_agenda(viewer, None, brief=True)
        except Exception:  # a damaged or unready database: the page that asks says so
            caching.log.exception("could not draw the committee's agenda ahead of time")
        caching.warm_wanted.wait(caching.PRIORS_SECONDS + 1)
        caching.warm_wanted.clear()
