"""Collection rules for the whole tree (doctests run over the source packages too)."""

# Entry points build an app or start a server when imported; they are run, not collected.
collect_ignore_glob = ["*/wsgi.py", "*/__main__.py", "bench/*", "deploy/*", ".venv/*"]
