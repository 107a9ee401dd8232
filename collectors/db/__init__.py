"""Dual-node database (双机热备) state: role, replication, lag, read-only standby, failover."""
