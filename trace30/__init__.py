"""The ``trace30`` command: run the suite, re-verify traders in batches (RQ workers), purge
what the retention period lets go."""
