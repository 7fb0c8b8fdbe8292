"""nginx configurations: the static upstream (the "CRM") and the baseline reverse proxy.

Both are started with `-p <dir> -c <file> -g "daemon off;"`, so the master stays our child
(stopped with its process group) and every path nginx writes is under the run directory.
The baseline proxy does what the gateway does on the same hop: terminates TLS with the same
certificate, keeps a keep-alive pool to the upstream, sets X-Forwarded-* and writes one access
log line per request, so the two are compared on equal work.
"""

from __future__ import annotations

import shutil
from pathlib import Path

_COMMON = """\
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
worker_rlimit_nofile 8192;
events {{ worker_connections 4096; }}
"""

_TEMP_PATHS = """\
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
"""

UPSTREAM = (
    "worker_processes {workers};\n"
    + _COMMON
    + """\
http {{
{temp}
    access_log off;  # the upstream is scenery, the same for the gateway and the baseline
    keepalive_requests 1000000;
    types {{ text/html html; }}
    server {{
        listen 127.0.0.1:{port} reuseport;
        root {root};
        location / {{ default_type text/html; }}
    }}
}}
"""
)

PROXY = (
    "worker_processes {workers};\n"
    + _COMMON
    + """\
http {{
{temp}
    access_log {prefix}/access.log;
    keepalive_requests 1000000;
    upstream crm {{
        server 127.0.0.1:{upstream_port};
        keepalive 128;
    }}
    server {{
        listen 127.0.0.1:{port} ssl reuseport;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        location / {{
            proxy_pass http://crm;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $remote_addr;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Forwarded-Host $host;
            proxy_buffering on;
        }}
    }}
}}
"""
)


def nginx_binary() -> str | None:
    return shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if Path(p).is_file()), None
    )


def _prefix(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o755)  # workers drop to `nobody` when nginx runs as root
    return directory


def upstream_conf(directory: Path, *, port: int, root: Path, workers: int = 1) -> Path:
    prefix = _prefix(directory)
    text = UPSTREAM.format(
        prefix=prefix,
        temp=_TEMP_PATHS.format(prefix=prefix),
        port=port,
        root=root,
        workers=workers,
    )
    path = prefix / "nginx.conf"
    path.write_text(text)
    return path


def proxy_conf(
    directory: Path, *, port: int, upstream_port: int, cert: Path, key: Path, workers: int
) -> Path:
    prefix = _prefix(directory)
    text = PROXY.format(
        prefix=prefix,
        temp=_TEMP_PATHS.format(prefix=prefix),
        port=port,
        upstream_port=upstream_port,
        cert=cert,
        key=key,
        workers=workers,
    )
    path = prefix / "nginx.conf"
    path.write_text(text)
    return path


def argv(conf: Path) -> list[str]:
    binary = nginx_binary()
    if binary is None:
        raise RuntimeError("nginx is not installed (bench/setup.sh installs it)")
    return [binary, "-p", str(conf.parent), "-c", str(conf), "-g", "daemon off;"]
