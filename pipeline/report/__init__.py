"""The pipeline's report: read the artifacts (collect), draw (charts, svg), render (Jinja2), publish.

Layered one way: collect -> charts -> render; github and browser only take the rendered files.
"""
