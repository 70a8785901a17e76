"""Simulators of the outside systems trace30 talks to, used in sandbox and tests."""
