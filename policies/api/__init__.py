"""The integrations API (``/api/v1/``, design §8): DRF views over the same service layer as the pages."""
