"""Console: the Django project package and the configuration side of the product."""
from .celery import app as celery_app

__all__ = ["celery_app"]
