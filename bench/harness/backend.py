"""The REST backend both servers call: nginx serving a static JSON file, with its own prefix and config."""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from .procs import Proc, free_port, spawn, wait_http

PET = {"id": 1, "name": "Rex", "status": "available", "tag": "dog"}

# One process (no master), no access log, keep-alive connections that live as long as the run.
NGINX_CONF = """\
worker_processes 1;
master_process off;
daemon off;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 8192; }}
http {{
    access_log off;
    sendfile on;
    tcp_nodelay on;
    keepalive_requests 10000000;
    keepalive_timeout 600s;
    client_body_temp_path {prefix}/tmp/body;
    proxy_temp_path {prefix}/tmp/proxy;
    types {{ }}
    default_type application/json;
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        root {prefix}/www;
        etag off;
        location / {{ try_files $uri =404; }}
    }}
}}
"""


def ensure_packages(log) -> None:
    """wrk and nginx come from Debian's packages; install them when missing and we are root."""
    import os

    missing = [pkg for pkg, binary in (("wrk", "wrk"), ("nginx-light", "nginx")) if not shutil.which(binary)]
    if not missing:
        return
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise SystemExit(f"missing {', '.join(missing)}: install them (apt-get install -y wrk nginx-light)")
    log(f"installing {' '.join(missing)} from Debian's packages")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    result = subprocess.run(["apt-get", "install", "-y", "-q", *missing], env=env, capture_output=True, text=True)
    if result.returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True)
        subprocess.run(["apt-get", "install", "-y", "-q", *missing], env=env, check=True, capture_output=True)


def start_nginx(workdir: Path, *, cores: str | None) -> tuple[Proc, str]:
    prefix = workdir / "nginx"
    (prefix / "www" / "pets").mkdir(parents=True, exist_ok=True)
    (prefix / "tmp").mkdir(exist_ok=True)
    (prefix / "www" / "pets" / "1").write_text(json.dumps(PET, separators=(",", ":")))
    (prefix / "www" / "healthz").write_text('{"status":"ok"}')
    port = free_port()
    conf = prefix / "nginx.conf"
    conf.write_text(NGINX_CONF.format(prefix=prefix, port=port))
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    proc = spawn("nginx", [nginx, "-p", str(prefix), "-e", str(prefix / "error.log"), "-c", str(conf)],
                 log=workdir / "logs" / "nginx.log", cores=cores)
    wait_http("127.0.0.1", port, "/healthz", proc=proc, timeout=10)
    return proc, f"http://127.0.0.1:{port}"
