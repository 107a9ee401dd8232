"""govnet API and web console: who may see and do what."""
