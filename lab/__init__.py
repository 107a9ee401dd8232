"""A simulated extranet on loopback: SNMP agents and vendor SSH CLIs for every device of an inventory."""
