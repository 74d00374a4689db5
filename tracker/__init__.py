"""Milestone's engine: framework, store, queries, access and charts, importable without Streamlit."""
