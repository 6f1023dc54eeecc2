"""Experiment (not the product): console.asgi with Python's garbage-collector pauses timed.

Run the harness with `--app gc_probe:application` (bench/experiments is put on PYTHONPATH).
BENCH_GC_FREEZE=1: gc.freeze() once the app is imported (Django's start-up objects leave the collector's reach);
BENCH_GC_FREEZE_AFTER=<s>: the same, <s> seconds later (after the first requests' lazy imports);
BENCH_GC_THRESHOLD=<g0>,<g1>,<g2>: gc.set_threshold(...).
Each process appends its pause statistics to $BENCH_GC_LOG every 5 s.
"""
import gc
import json
import os
import threading
import time

from console.asgi import application  # noqa: F401

_pauses: dict[int, list[float]] = {0: [], 1: [], 2: []}
_started = [0.0]


def _callback(phase, info):
    if phase == "start":
        _started[0] = time.perf_counter()
    else:
        _pauses[info["generation"]].append(time.perf_counter() - _started[0])


if os.environ.get("BENCH_GC_FREEZE"):
    gc.collect()
    gc.freeze()
if os.environ.get("BENCH_GC_THRESHOLD"):
    gc.set_threshold(*(int(v) for v in os.environ["BENCH_GC_THRESHOLD"].split(",")))
gc.callbacks.append(_callback)


def _freeze_later(seconds: float) -> None:
    time.sleep(seconds)
    gc.collect()
    gc.freeze()


if os.environ.get("BENCH_GC_FREEZE_AFTER"):
    threading.Thread(target=_freeze_later, args=(float(os.environ["BENCH_GC_FREEZE_AFTER"]),), daemon=True).start()


def _dump():
    path = os.environ.get("BENCH_GC_LOG")
    while path:
        time.sleep(5)
        summary = {"pid": os.getpid(), "frozen": gc.get_freeze_count(), "time": time.time()}
        for gen, values in _pauses.items():
            values = sorted(values)
            summary[f"gen{gen}"] = {"count": len(values), "total_ms": round(sum(values) * 1000, 1),
                                    "max_ms": round(values[-1] * 1000, 2) if values else 0,
                                    "p50_ms": round(values[len(values) // 2] * 1000, 3) if values else 0}
        with open(path, "a") as f:
            f.write(json.dumps(summary) + "\n")


threading.Thread(target=_dump, daemon=True).start()
