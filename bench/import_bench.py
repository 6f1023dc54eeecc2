"""`make bench-import`: GitHub's REST API description (npm @octokit/openapi) imported end to end, then confirmed."""
# Runs in a fresh process on a fresh SQLite database: the job is created and run by the same code as on a worker
# (create → convert → diff → preview stored), then every tool is confirmed into one server. Prints wall and CPU
# time of each phase and the process's peak RSS, and writes bench/results/import-<date>.json.
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "var" / "bench-cache"
PACKAGE = "@octokit/openapi"
MEMBER = "package/generated/api.github.com.json"


def description(version: str | None) -> Path:
    """The description from the npm package, fetched once with npm into var/bench-cache/ (not committed)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    target = CACHE / "api.github.com.json"
    if target.exists() and not version:
        return target
    npm = shutil.which("npm")
    if npm is None:
        sys.exit("npm is needed to fetch @octokit/openapi (apt-get install npm)")
    spec = f"{PACKAGE}@{version}" if version else PACKAGE
    name = subprocess.run([npm, "pack", spec, "--silent"], cwd=CACHE, check=True, capture_output=True,
                          text=True).stdout.strip().splitlines()[-1]
    with tarfile.open(CACHE / name) as archive:
        with archive.extractfile(MEMBER) as source, open(target, "wb") as out:
            shutil.copyfileobj(source, out)
    return target


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(path: Path) -> dict:
    """In this process: a fresh database, one server, the import and the confirmation."""
    directory = tempfile.mkdtemp(prefix="mcpgw-bench-import-")
    os.environ.update({"DATABASE_URL": f"sqlite:///{directory}/db.sqlite3", "DJANGO_SETTINGS_MODULE":
                       "console.settings", "CELERY_TASK_ALWAYS_EAGER": "true", "REDIS_URL": ""})
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from console import services
    from console.services import imports as import_services

    owner = get_user_model().objects.create_user("bench", password="bench-pass-1")
    team = services.team_create(name="Bench", owner=owner)
    instance = services.instance_create(actor=owner, team=team, name="bench")
    server = services.mcp_server_create(actor=owner, instance=instance, name="github")
    data = path.read_bytes()
    baseline = rss_mb()

    import_services.enqueue = lambda job_id: None  # the run below is the task's own call, timed in the foreground
    started, cpu = time.perf_counter(), cpu_seconds()
    job = import_services.import_job_create(actor=owner, mcp_server=server, files=[(path.name, data)])
    job = import_services.import_job_run(job_id=job.pk)
    preview_seconds = time.perf_counter() - started
    preview_cpu = cpu_seconds() - cpu
    preview_rss = rss_mb()
    assert job.status == "succeeded", job.errors
    names = [row["name"] for row in job.preview["tools"]]

    started, cpu = time.perf_counter(), cpu_seconds()
    result = import_services.import_job_confirm(actor=owner, job=job, tools=names)
    confirm_seconds = time.perf_counter() - started
    confirm_cpu = cpu_seconds() - cpu
    return {
        "description": f"{path.name} ({len(data) / 1e6:.1f} MB)", "operations": job.counts["operations"],
        "tools": len(result["created"]), "warnings": len(job.warnings),
        "preview_yaml_mb": round(len(job.preview_yaml) / 1e6, 1),
        "preview_seconds": round(preview_seconds, 2), "preview_cpu_seconds": round(preview_cpu, 2),
        "confirm_seconds": round(confirm_seconds, 2), "confirm_cpu_seconds": round(confirm_cpu, 2),
        "rss_baseline_mb": round(baseline), "rss_peak_after_preview_mb": round(preview_rss),
        "rss_peak_mb": round(rss_mb()), "python": sys.version.split()[0], "cpus": os.cpu_count(),
        "load_average": round(os.getloadavg()[0], 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--version", help="a version of @octokit/openapi (default: the cached one, else latest)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(Path(args.child))))
        return
    path = description(args.version)
    # A process of its own, so the peak RSS is the import's and not this script's.
    out = subprocess.run([sys.executable, __file__, "--child", str(path)], check=True, capture_output=True,
                         text=True, cwd=ROOT).stdout.strip().splitlines()[-1]
    figures = json.loads(out)
    targets = {"preview_seconds": 10, "confirm_seconds": 10, "rss_peak_mb": 500}
    for key, value in figures.items():
        limit = targets.get(key)
        mark = "" if limit is None else ("  ok (≤ %s)" % limit if value <= limit else "  OVER (target ≤ %s)" % limit)
        print(f"{key:28} {value}{mark}")
    results = ROOT / "bench" / "results"
    results.mkdir(exist_ok=True)
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H%M")
    (results / f"import-{stamp}.json").write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
