from django.apps import AppConfig


class FlowsConfig(AppConfig):
    name = "flows"
    verbose_name = "Inventory and flows"

    def ready(self) -> None:
        from flows import versions

        versions.connect_signals()
