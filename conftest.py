"""Collection rules for the whole tree (doctests run over the source packages too)."""

# Entry points build an app or start a server when imported; they are run, not collected.
# Fixtures more than one test package uses: one home each, found by name (no imports of fixtures).
pytest_plugins = [
    "tests.gateway.evidence_fixtures",
    "tests.gateway.fixtures",
    "tests.registry.fixtures",
    "tests.payment.fixtures",
    "tests.vat.fixtures",
]

collect_ignore_glob = ["*/wsgi.py", "*/__main__.py", "bench/*", "deploy/*", ".venv/*"]
