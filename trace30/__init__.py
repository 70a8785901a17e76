"""The ``trace30`` command: run the suite, and (later) batch jobs over the evidence log."""
