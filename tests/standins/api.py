"""A loopback HTTP server that serves a snapshot under the real APIs' paths.

Mount points: http://127.0.0.1:PORT/<host>/<path> answers what https://<host>/<path> answered
when the snapshot was recorded. It can add latency, enforce per-host rate limits (answering
429 with Retry-After when exceeded), inject faults, and serve changed bodies (drift).
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

from biocurate.snapshot import Snapshot, fingerprint

HOSTS = ("rest.ensembl.org", "rest.uniprot.org", "eutils.ncbi.nlm.nih.gov", "blast.ncbi.nlm.nih.gov")
FAULTS = ("500", "503", "timeout", "malformed_json", "truncated_json", "html_error", "empty", "429")


@dataclass
class Fault:
    kind: str
    match: str  # substring of the request path
    times: int = 10**9  # how many matching requests get the fault


@dataclass
class ApiStandIn:
    snapshot: Snapshot
    latency: float = 0.0
    # host -> requests per second: at most ceil(rate) accepted in any ceil(rate)/rate seconds (for a
    # whole number, that many in any 1 s window); beyond it 429 with Retry-After.
    rate_limits: dict[str, float] = field(default_factory=dict)
    host_latency: dict[str, float] = field(default_factory=dict)  # host -> extra seconds before answering
    retry_after: float = 1.0
    faults: list[Fault] = field(default_factory=list)
    overrides: dict[str, bytes] = field(default_factory=dict)  # snapshot key -> new body (drift)
    sequences: dict[str, list[bytes]] = field(default_factory=dict)  # snapshot key -> bodies in turn, last repeats
    requests: list[tuple[float, str, str, int]] = field(default_factory=list)  # time, host, path, status
    _windows: dict = field(default_factory=lambda: defaultdict(deque))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> ApiStandIn:
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def do_GET(self):
                stand_in.handle(self)

            def do_POST(self):
                stand_in.handle(self)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    def base_urls(self) -> dict[str, str]:
        """The [execute] base_urls override that points the executor here."""
        root = f"http://127.0.0.1:{self.port}"
        return {
            "https://eutils.ncbi.nlm.nih.gov": f"{root}/eutils.ncbi.nlm.nih.gov",
            "https://blast.ncbi.nlm.nih.gov": f"{root}/blast.ncbi.nlm.nih.gov",
            "https://rest.ensembl.org": f"{root}/rest.ensembl.org",
            "https://rest.uniprot.org": f"{root}/rest.uniprot.org",
        }

    def served(self, host: str | None = None, status: int | None = None) -> list:
        return [r for r in self.requests if (host is None or r[1] == host) and (status is None or r[3] == status)]

    def _fault(self, path: str) -> str | None:
        with self._lock:
            for fault in self.faults:
                if fault.match in path and fault.times > 0:
                    fault.times -= 1
                    return fault.kind
        return None

    def _over_limit(self, host: str, now: float) -> bool:
        limit = self.rate_limits.get(host)
        if not limit:
            return False
        allowed = math.ceil(limit)
        span = allowed / limit
        with self._lock:
            window = self._windows[host]
            while window and now - window[0] >= span:
                window.popleft()
            if len(window) >= allowed:
                return True
            window.append(now)
            return False

    def handle(self, req: BaseHTTPRequestHandler) -> None:
        now = time.monotonic()
        split = urlsplit(req.path)
        host, _, rest = split.path.lstrip("/").partition("/")
        length = int(req.headers.get("content-length") or 0)
        raw = req.rfile.read(length) if length else b""
        if self.latency or host in self.host_latency:
            time.sleep(self.latency + self.host_latency.get(host, 0.0))
        status, ctype, body, headers = self._answer(
            host, "/" + rest, split.query, req.command, raw, req.headers.get("content-type", ""), now
        )
        with self._lock:
            self.requests.append((now, host, "/" + rest, status))
        try:
            req.send_response(status)
            req.send_header("Content-Type", ctype)
            req.send_header("Content-Length", str(len(body)))
            for k, v in headers.items():
                req.send_header(k, v)
            req.end_headers()
            req.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _answer(self, host, path, query, method, raw, content_type, now):
        if host not in HOSTS:
            return 404, "text/plain", b"unknown host", {}
        if self._over_limit(host, now):
            return 429, "application/json", b'{"error": "Too many requests"}', {"Retry-After": f"{self.retry_after:g}"}
        fault = self._fault(path)
        if fault == "timeout":
            time.sleep(5)
            return 504, "text/plain", b"", {}
        if fault in ("500", "503"):
            return int(fault), "text/html", b"<html><body>Internal error</body></html>", {}
        if fault == "429":
            return 429, "application/json", b'{"error": "busy"}', {"Retry-After": f"{self.retry_after:g}"}
        if fault == "malformed_json":
            return 200, "application/json", b"{'id': ENSG00000139618, }", {}
        if fault == "truncated_json":
            return 200, "application/json", b'{"results": [{"primaryAccession": "P04', {}
        if fault == "html_error":
            return (
                200,
                "text/html",
                b"<html><head><title>Service unavailable</title></head><body>Error: please retry</body></html>",
                {},
            )
        if fault == "empty":
            return 200, "application/json", b"", {}
        params = parse_qsl(query, keep_blank_values=True)
        body = None
        if raw:
            body = json.loads(raw) if content_type.startswith("application/json") else dict(parse_qsl(raw.decode()))
        key = fingerprint(method, f"https://{host}{path}", params, body)
        found = self.snapshot.get(key)
        if found is None:
            return (
                404,
                "application/json",
                json.dumps({"error": f"stand-in has no response for {method} {host}{path}"}).encode(),
                {},
            )
        entry, content = found
        content = self.overrides.get(key, content)
        with self._lock:
            turns = self.sequences.get(key)
            if turns:
                content = turns.pop(0) if len(turns) > 1 else turns[0]
        headers = {"X-UniProt-Release": "2026_04"} if host == "rest.uniprot.org" else {}
        return entry.status, entry.content_type, content, headers
