"""The gateway process tuning: Twisted's Content-Type parsing cached, its access line skipped, writes sent at once,
collector thresholds raised, start-up frozen (what clients then read from a live server: test_live_writes)."""
import gc

import twisted.web.http as twisted_http
from daphne.http_protocol import HTTPFactory
from twisted.internet import tcp

from gateway.tuning import tune_process


def test_tune_process_is_applied_once_and_keeps_behaviour():
    tune_process(freeze_after=0.01)
    tune_process()  # idempotent: no double wrapping
    assert hasattr(twisted_http._parseContentType, "cache_info")
    assert not hasattr(twisted_http._parseContentType.__wrapped__, "cache_info")
    assert twisted_http._parseContentType(b"application/json; charset=utf-8") == b"application/json"
    assert gc.get_threshold()[0] == 20_000
    assert gc.get_freeze_count() > 0
    assert HTTPFactory.log(None, None) is None  # no line formatted for a log nobody reads
    assert tcp.Server._sends_at_once
    write = tcp.Server.writeSequence
    tune_process()
    assert tcp.Server.writeSequence is write  # wrapped once
