"""Where samples go: the Prometheus /metrics endpoint and the InfluxDB writer with its durable spool."""
