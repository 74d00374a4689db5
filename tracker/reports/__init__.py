"""What is drawn and printed: pure chart builders, DataFrame -> Altair (charts), and the PDF packets of a
learner, a cohort and a meeting (packets). May import: review, analysis, plans, access, storage, core,
data_models.
"""
