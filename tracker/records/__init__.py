"""Records in and out: every import kind, whole or not at all (importing), every export (exporting), the
rules every new rating meets (rules), review and plan records as files (review_records, plan_records), the writes the
app makes of ratings and evidence (actions), framework revisions (revision), opening and seeding the configured
database (setup), and the generator of programs shaped like the sample (generate). May import: plans, analysis,
access, storage, framework, core, data_models.
"""
