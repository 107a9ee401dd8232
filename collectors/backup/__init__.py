"""Backup verification: newest backup's age, size against history, checksums recorded and re-checked."""
