"""Two more built-in demo REST APIs the offline market listings call: a weather service and a cat-picture maker."""
from __future__ import annotations

import hashlib
import html

from django.http import HttpRequest, HttpResponse, JsonResponse

CONDITIONS = ("sunny", "cloudy", "light rain", "windy", "snow showers", "fog")
COLOURS = {"orange": "#f0a03c", "black": "#2b2b2b", "grey": "#9a9a9a", "white": "#f4f4f4", "brown": "#8b5a2b"}
CITY_MAX = 80
TEXT_MAX = 40


def _seed(*parts: str) -> int:
    return int.from_bytes(hashlib.sha256("|".join(parts).encode()).digest()[:4], "big")


def _day(city: str, day: int) -> dict:
    n = _seed(city.lower(), str(day))
    return {"day": day, "condition": CONDITIONS[n % len(CONDITIONS)], "temperature_c": (n >> 8) % 35 - 5,
            "wind_kph": (n >> 16) % 60}


def _city(request: HttpRequest) -> str | JsonResponse:
    city = (request.GET.get("city") or "").strip()
    if not city or len(city) > CITY_MAX:
        return JsonResponse({"detail": f"Give a city of 1 to {CITY_MAX} characters."}, status=400)
    return city


def weather_current(request: HttpRequest) -> JsonResponse:
    """Made-up but stable weather: the same city gives the same answer, so tests and demos can rely on it."""
    city = _city(request)
    if isinstance(city, JsonResponse):
        return city
    return JsonResponse({"city": city, **_day(city, 0)})


def weather_forecast(request: HttpRequest) -> JsonResponse:
    city = _city(request)
    if isinstance(city, JsonResponse):
        return city
    try:
        days = int(request.GET.get("days") or 3)
    except ValueError:
        return JsonResponse({"detail": "days must be a whole number from 1 to 7."}, status=400)
    if not 1 <= days <= 7:
        return JsonResponse({"detail": "days must be a whole number from 1 to 7."}, status=400)
    return JsonResponse({"city": city, "days": [_day(city, d) for d in range(1, days + 1)]})


def cat_image(request: HttpRequest) -> HttpResponse:
    """An SVG cat in the colour asked for, with an optional caption."""
    colour = (request.GET.get("color") or "orange").strip().lower()
    if colour not in COLOURS:
        return JsonResponse({"detail": f"color must be one of {', '.join(COLOURS)}."}, status=400)
    text = (request.GET.get("text") or "").strip()[:TEXT_MAX]
    fill = COLOURS[colour]
    svg = (
        '<svg xmlns="http://www.w3.org/2000/svg" width="200" height="200" viewBox="0 0 200 200">'
        f'<polygon points="50,40 80,80 40,90" fill="{fill}"/><polygon points="150,40 120,80 160,90" fill="{fill}"/>'
        f'<circle cx="100" cy="110" r="60" fill="{fill}"/>'
        '<circle cx="78" cy="100" r="8" fill="#222"/><circle cx="122" cy="100" r="8" fill="#222"/>'
        '<polygon points="94,120 106,120 100,128" fill="#d77"/>'
        f'<text x="100" y="192" font-size="16" text-anchor="middle" font-family="sans-serif">{html.escape(text)}</text>'
        "</svg>"
    )
    return HttpResponse(svg, content_type="image/svg+xml")


def cat_fact(request: HttpRequest) -> JsonResponse:
    facts = ["Cats sleep for around 13 to 16 hours a day.", "A group of cats is called a clowder.",
             "Cats have five toes on their front paws and four on the back.",
             "A cat's purr vibrates at 25 to 150 hertz."]
    try:
        n = int(request.GET.get("n") or 0)
    except ValueError:
        n = 0
    return JsonResponse({"fact": facts[n % len(facts)]})
