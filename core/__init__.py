"""The ground floor: samples, secrets, pipeline contracts, latest store and fan-out, shared by every room.

Nothing here imports any other govnet package; every room may import from here.
"""
