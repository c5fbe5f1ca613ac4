"""The live sync: the inventory read from the Kubernetes API (design §2)."""
