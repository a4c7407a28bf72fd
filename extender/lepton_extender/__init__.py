"""The kube-scheduler HTTP extender: filter and prioritize by load and power cost. Run as ``lepton extender``."""
