"""Learning plans: the goals, their versions, comments and agreement (plan_actions: the rules and the
writes) and their reads with each goal's status (plan_queries). May import: access, storage, core, data_models.
"""
