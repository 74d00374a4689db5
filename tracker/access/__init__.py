"""Who may see and do what (policy): the viewer, the scope of every read in SQL, and the checks every
write runs, each refusal recorded. May import: storage, core, data_models.
"""
