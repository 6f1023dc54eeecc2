"""Experiment (not the product): Twisted's per-request Content-Type parsing cached.

Twisted parses every POST's Content-Type with the `email` package (`twisted.web.http._parseContentType`,
for form submissions Daphne never uses); under load that is a fifth of a Daphne process. Caching it by the
header's bytes removes nearly all of it. Imports gc_probe, so its BENCH_GC_* knobs apply too.
Run the harness with `--app twisted_ctype:application`.
"""
import functools

import twisted.web.http as twisted_http

twisted_http._parseContentType = functools.lru_cache(maxsize=256)(twisted_http._parseContentType)

from gc_probe import application  # noqa: E402,F401
