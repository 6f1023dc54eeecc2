"""The authorization server's endpoints, under the library's URL namespace (its views reverse these names)."""
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from .views import (
    ConsentView, RegistrationEndpoint, RegistrationManagementEndpoint, RevocationEndpoint, TokenEndpoint,
)

app_name = "oauth2_provider"

urlpatterns = [
    path("authorize/", ConsentView.as_view(), name="authorize"),
    path("token/", TokenEndpoint.as_view(), name="token"),
    path("revoke/", RevocationEndpoint.as_view(), name="revoke-token"),
    path("register/", csrf_exempt(RegistrationEndpoint.as_view()), name="dcr-register"),
    path("register/<str:client_id>/", csrf_exempt(RegistrationManagementEndpoint.as_view()),
         name="dcr-register-management"),
]
