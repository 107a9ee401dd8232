"""Scale-out: shard the inventory over `govnet run` nodes by consistent hashing, membership in PostgreSQL."""
