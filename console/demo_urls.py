"""Routes of the built-in demo REST API; console/urls.py mounts them at /demo-api/."""
from django.urls import path, re_path

from . import demo_api

# A trailing slash is optional so clients and generated tools may use either form.
urlpatterns = [
    path("openapi.json", demo_api.openapi, name="demo_api_openapi"),
    re_path(r"^pets/?$", demo_api.pets, name="demo_pet_list"),
    re_path(r"^pets/(?P<pet_id>[^/]+)/?$", demo_api.pet, name="demo_pet"),
]
