"""Routes of the market's pages (under /market/) and of the demo APIs its offline listings call (/market-demo/)."""
from django.urls import path

from . import demo_backends, router, views

urlpatterns = [
    path("market/", views.market, name="market"),
    path("market/l/<slug:slug>/", views.listing, name="market_listing"),
    path("market/l/<slug:slug>/subscribe/", views.listing_subscribe, name="market_subscribe"),
    path("market/subscriptions/", views.subscription_list, name="market_subscriptions"),
    path("market/subscriptions/<int:pk>/", views.subscription, name="market_subscription"),
    path("market/subscriptions/<int:pk>/rotate-key/", views.subscription_rotate_key,
         name="market_subscription_rotate"),
    path("market/subscriptions/<int:pk>/upgrade/", views.subscription_upgrade, name="market_subscription_upgrade"),
    path("market/subscriptions/<int:pk>/delete/", views.subscription_delete, name="market_subscription_delete"),
    path("market/submissions/", views.submission_list, name="market_submissions"),
    path("market/submissions/add/", views.submission_add, name="market_submissions_add"),
    path("market/review/", views.review_queue, name="market_review"),
    path("market/review/<int:pk>/<str:decision>/", views.review_decide, name="market_review_decide"),
    path("market/router/", router.router_page, name="market_router"),
    path("market/router/key/", router.router_key_new, name="market_router_key"),
    path("market/router/mcp", router.router_endpoint, name="market_router_mcp"),
    path("market-demo/weather/current", demo_backends.weather_current, name="market_demo_weather"),
    path("market-demo/weather/forecast", demo_backends.weather_forecast, name="market_demo_forecast"),
    path("market-demo/cats/image", demo_backends.cat_image, name="market_demo_cat_image"),
    path("market-demo/cats/fact", demo_backends.cat_fact, name="market_demo_cat_fact"),
]
