"""Settings, the errors users can meet, and text that came from a person: what every package may use.
Imports nothing of tracker.
"""
