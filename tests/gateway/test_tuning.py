"""The gateway process tuning: Twisted's Content-Type parsing cached, collector thresholds raised, start-up frozen."""
import gc

import twisted.web.http as twisted_http

from gateway.tuning import tune_process


def test_tune_process_is_applied_once_and_keeps_behaviour():
    tune_process(freeze_after=0.01)
    tune_process()  # idempotent: no double wrapping
    assert hasattr(twisted_http._parseContentType, "cache_info")
    assert not hasattr(twisted_http._parseContentType.__wrapped__, "cache_info")
    assert twisted_http._parseContentType(b"application/json; charset=utf-8") == b"application/json"
    assert gc.get_threshold()[0] == 20_000
    assert gc.get_freeze_count() > 0
