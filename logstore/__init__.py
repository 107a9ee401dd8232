"""Append-only, tamper-evident storage of security log records, with verifiable export."""
