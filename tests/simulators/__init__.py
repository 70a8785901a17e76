"""Tests of the simulators of outside systems."""
