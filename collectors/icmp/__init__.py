"""Active ICMP echo probing: RTT, loss and jitter per device over a sliding window."""
