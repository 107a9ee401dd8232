"""Where is this address: ARP and forwarding tables, edge ports, history and address events."""
