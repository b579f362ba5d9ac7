from django.apps import AppConfig


class FusemountConfig(AppConfig):
    name = "fusemount"
    verbose_name = "Mount"
