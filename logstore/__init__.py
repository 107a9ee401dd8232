"""Append-only, tamper-evident storage of security log records, with verifiable export."""

from logstore.native import NATIVE

# Before logstore.batch is imported: a compiled module older than its source must not shadow it.
NATIVE.guard()
