"""Verifiable checks of a completion inserted into its file, no LLM needed: parsing
(:mod:`~prefloop.checks.syntax`), undefined names in Python (:mod:`~prefloop.checks.names`)
and security smells (:mod:`~prefloop.checks.security`).

They are pure functions of the text, shared by the judge (which stores their results as
critiques) and the trainer (which drops preference pairs whose chosen text fails them).
"""
