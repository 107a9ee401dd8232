"""Syslog ingestion: framing (RFC 6587), parsing (RFC 3164/5424 and vendor formats as data), receiver."""

from collectors.syslog.native import NATIVE

# Before any parse module is imported: a compiled module older than its source must not shadow it.
NATIVE.guard()
