"""E-mail: one message over SMTP (smtp), and the reminder digests of `python -m tracker remind`
(reminders). May import: analysis, plans, access, storage, core, data_models.
"""
