"""The database, and the only code that knows which mode runs: the schema and its migrations (schema), the
connection and the one write path (database), the rows of records (record_rows), the derived level tables (derived),
the framework's tables (framework_tables), backups (backups), work handed to the running app (control), server
mode's copy of PostgreSQL (replica), and opening whichever is configured (opening). May import: framework, core,
data_models.
"""
