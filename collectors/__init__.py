"""What is measured: the scheduler and the SNMP, SSH, ICMP, trap, syslog and backup collectors."""
