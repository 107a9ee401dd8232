"""A small, fast SNMP v2c/v3 agent for the lab (BER codec, USM, asyncio UDP agent, snmprec loader)."""
