"""Notifiers: one small class per channel, each with one `send` returning (retry?, error)."""
