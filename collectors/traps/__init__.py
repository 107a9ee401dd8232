"""SNMP trap and inform receiver: classify by data (traps/*.yaml), map to devices, confirm by a re-poll."""
