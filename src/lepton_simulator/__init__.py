"""The trace-driven simulator: replays cluster traces through the shared scoring. Run as ``lepton simulate``."""
