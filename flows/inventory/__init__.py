"""Inventory of a cluster: pure parsing of Kubernetes objects (``parse``) and the one write path (``store``)."""
