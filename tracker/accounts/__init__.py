"""Sign-in accounts: password rules and hashes (passwords), signing in and out with lockout and
server-side sessions (sessions), one-time links (account_links), what coordinators do to accounts (admin), the
accounts page's reads (account_queries) and the `users` commands (commands). May import: mail, records, access,
storage, core, data_models.
"""
