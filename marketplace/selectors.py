"""Reads of the market: listed listings for everyone who may browse, subscriptions and submissions by team."""
from __future__ import annotations

import re

from django.conf import settings
from django.db import connection
from django.db.models import Count, F, QuerySet

from console.errors import NotFound
from console.selectors import team_list

from .models import Category, Listing, ListingVersion, Submission, Subscription

PAGE_SIZE = 12
QUERY_MAX = 300
TERMS_MAX = 12
SORTS = ("relevance", "popular", "new", "name")
_WORD = re.compile(r"[a-z0-9]+")
# Words a task description is full of that say nothing about which server fits.
STOPWORDS = {
    "a", "an", "the", "and", "or", "of", "to", "for", "in", "on", "with", "me", "my", "i", "is", "it", "some", "any",
    "please", "can", "you", "get", "give", "show", "find", "that", "this", "from", "by", "at", "as", "be", "do", "want",
    "need", "how", "what", "which", "who", "new",
}


def may_browse(user) -> bool:
    return bool(getattr(user, "is_authenticated", False)) or settings.MARKET_ANONYMOUS_BROWSING


def query_terms(q: str) -> list[str]:
    words = _WORD.findall((q or "")[:QUERY_MAX].lower())
    terms: list[str] = []
    for word in words:
        if word not in STOPWORDS and word not in terms:
            terms.append(word)
    return terms[:TERMS_MAX]


def category_list() -> QuerySet[Category]:
    return Category.objects.annotate(listing_count=Count("listings", distinct=True))


def _listed() -> QuerySet[Listing]:
    return (Listing.objects.filter(listed=True).select_related("category")
            .annotate(subscriber_count=Count("subscriptions", distinct=True)))


def _stem(term: str) -> str:
    # A light stem, so "images" finds "image" and "forecasting" finds "forecast" without a language library.
    for suffix in ("ing", "es", "s"):
        if len(term) > len(suffix) + 3 and term.endswith(suffix):
            return term[: -len(suffix)]
    return term


def _score(listing: Listing, terms: list[str]) -> float:
    """Relevance on SQLite: a term in the title weighs most, then tags, then the summary, then tool descriptions."""
    fields = ((listing.title + " " + listing.slug).lower(), " ".join(listing.tags).lower(), listing.summary.lower(),
              listing.search_tools.lower())
    weights = (8.0, 4.0, 2.0, 1.0)
    score = 0.0
    for term in terms:
        stem = _stem(term)
        for text, weight in zip(fields, weights):
            if re.search(r"\b" + re.escape(stem), text):
                score += weight
    return score


def listing_search(*, q: str = "", category: str = "", sort: str = "") -> list[Listing] | QuerySet[Listing]:
    """Listed listings matching `q` (keywords or a task description), best first; else sorted as asked."""
    qs = _listed()
    if category:
        qs = qs.filter(category__slug=category)
    terms = query_terms(q)
    sort = sort if sort in SORTS else ("relevance" if terms else "popular")
    order = {"popular": ("-subscriber_count", "title"), "new": ("-created_at", "-pk"), "name": ("title",),
             "relevance": ("-subscriber_count", "title")}[sort]
    if not terms:
        return qs.order_by(*order)
    if connection.vendor == "postgresql":
        from django.contrib.postgres.search import SearchQuery, SearchRank, SearchVector

        vector = (SearchVector("title", "slug", weight="A", config="english")
                  + SearchVector("tags", weight="B", config="english")
                  + SearchVector("summary", weight="C", config="english")
                  + SearchVector("search_tools", weight="D", config="english"))
        # Any term may match (a task description rarely shares all its words with a listing); ranking sorts it out.
        query = SearchQuery(" | ".join(terms), search_type="raw", config="english")
        ranked = qs.annotate(rank=SearchRank(vector, query)).filter(rank__gt=0)
        if sort == "relevance":
            return ranked.order_by(F("rank").desc(), *order)
        return ranked.order_by(*order)
    scored = [(listing, _score(listing, terms)) for listing in qs.order_by(*order)]
    matched = [(listing, score) for listing, score in scored if score > 0]
    if sort == "relevance":
        matched.sort(key=lambda pair: -pair[1])  # stable: ties keep the popular order
    for listing, score in matched:
        listing.rank = score
    return [listing for listing, _ in matched]


def listing_get(*, slug: str) -> Listing:
    listing = _listed().filter(slug=slug).first()
    if listing is None:
        raise NotFound("No such listing.")
    return listing


def listing_versions(*, listing: Listing) -> QuerySet[ListingVersion]:
    return listing.versions.filter(status=ListingVersion.Status.APPROVED).order_by("-number")


def subscription_list(*, user, team=None) -> QuerySet[Subscription]:
    qs = (Subscription.objects.filter(team__in=team_list(user=user))
          .select_related("listing", "version", "instance", "team", "mcp_server", "api_key", "consumer"))
    if team is not None:
        qs = qs.filter(team=team)
    return qs


def subscription_get(*, user, pk: int) -> Subscription:
    subscription = subscription_list(user=user).filter(pk=pk).first()
    if subscription is None:
        raise NotFound("No such subscription.")
    return subscription


def subscription_of(*, user, team, listing: Listing) -> Subscription | None:
    return subscription_list(user=user, team=team).filter(user=user, listing=listing).first()


def submission_list(*, user) -> QuerySet[Submission]:
    """Staff see every submission (the review queue); others those of their teams."""
    qs = Submission.objects.select_related("listing", "version", "team", "submitted_by", "reviewed_by")
    if getattr(user, "is_staff", False):
        return qs
    return qs.filter(team__in=team_list(user=user))


def submission_get(*, user, pk: int) -> Submission:
    submission = submission_list(user=user).filter(pk=pk).first()
    if submission is None:
        raise NotFound("No such submission.")
    return submission
