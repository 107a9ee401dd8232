"""What is wrong: rules, state machine, topology-aware inhibition, silences, incidents, notifications."""
