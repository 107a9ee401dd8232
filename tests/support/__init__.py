"""Harnesses shared by the tests of several rooms (real components, started and stopped by the tests)."""
