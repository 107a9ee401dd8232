"""Grafana provisioning and dashboards for govnet, generated from code (see docs/grafana.md)."""
