"""What a page shows, read in one call below the pages: a learner's progress for the progress page and the
review meeting's packet (progress), and the small shapings pages show beside their figures (summaries). No
Streamlit. May import: reports, review, analysis, plans, access, storage, data_models.
"""
