"""The vendor of a MAC from the IEEE OUI registry shipped inside netaddr (offline; nothing fetched)."""

from __future__ import annotations

import functools

import netaddr


@functools.lru_cache(maxsize=65536)
def vendor_of(mac: int) -> str | None:
    """The organisation registered for the MAC's OUI; None for locally administered or unregistered ones."""
    if mac >> 40 & 0x02:  # locally administered (virtual machines, randomised phone MACs): no OUI
        return None
    try:
        org = netaddr.EUI(mac, version=48).oui.registration().org
    except (netaddr.NotRegisteredError, netaddr.AddrFormatError, IndexError, ValueError):
        return None
    return str(org).strip() or None
