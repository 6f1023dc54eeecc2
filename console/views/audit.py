"""A team's audit log: who changed what, which object and when, filtered and paginated."""
from __future__ import annotations

from django.contrib.auth.decorators import login_required

from .. import selectors
from ..filters import AuditEventFilter
from .common import fetch, follow_team, paginate, render_page

PAGE_SIZE = 50


@login_required
def audit_event_list(request, pk: int):
    team = fetch(selectors.team_get, user=request.user, pk=pk)
    follow_team(request, team.pk)
    filterset = AuditEventFilter(request.GET or None, queryset=selectors.audit_event_list(user=request.user, team=team),
                                 request=request)
    del filterset.filters["team"]  # the page is one team's; the URL names it
    if filterset.is_bound and not filterset.is_valid():
        events = filterset.queryset.none()
        status = 400
    else:
        events = filterset.qs
        status = 200
    page = paginate(request, events, PAGE_SIZE)
    return render_page(request, "console/audit_event_list.html",
                       {"team": team, "filter_form": filterset.form, "page": page,
                        "filtered": any(v for k, v in request.GET.items() if k != "page")},
                       partial="console/_audit_rows.html", status=status)
