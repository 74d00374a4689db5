"""The competency framework as data: loading and checking a YAML file (loading), and the interchange
formats (interchange: 1EdTech CASE and Moodle's competency CSV). May import: core, data_models.
"""
