"""SSH collection: netmiko at the edge of the asyncio core, strict host keys, config backup and HA state."""

from collectors.ssh.platform import Platform, load_platforms, platform_for

__all__ = ["Platform", "load_platforms", "platform_for"]
