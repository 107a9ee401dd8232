"""SNMP collection: gufo-snmp engine, YAML vendor profiles, pure profile evaluation, counter tracking."""

from collectors.snmp.collector import SnmpCollector

__all__ = ["SnmpCollector"]
