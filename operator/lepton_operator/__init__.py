"""The LeptonJob operator (kopf): job lifecycle and live cost accounting. Run as ``lepton operator``."""
