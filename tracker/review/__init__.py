"""The committee's review cycle: the agenda the app proposes (agendas), meetings, drafts, sign-off and
revisions (review_actions), and their reads (review_queries). May import: records, analysis, plans, access,
storage, core, data_models.
"""
