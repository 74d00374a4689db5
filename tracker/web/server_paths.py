"""The addresses of the HTTP routes served beside the app (tracker/web/server.py), shared with the pages' scripts."""

COOKIE = "milestone_session"
SESSION = "/milestone/session"  # POST a sign-in's one-time ticket: sets the HttpOnly session cookie
SIGN_OUT = "/milestone/sign-out"  # POST: ends the cookie's session and drops the cookie
HEALTH = "/milestone/health"  # GET: 200 when the database answers
