"""What exists: sites, devices, roles, HA groups, links and backup jobs; load, validation, topology."""
