"""govnet: a network and data-centre operations monitor for a government extranet."""

__version__ = "0.1.0"
