"""govnet's tests, one folder per room; shared harnesses in tests/support/."""
