"""A client's own web server for its client ID metadata document: HTTPS on a loopback address, self-signed.

The authorization server trusts the generated certificate through OAUTH_CIMD_CA_BUNDLE, so the document is fetched
over https exactly as in production; only the address (loopback) differs.
"""
from __future__ import annotations

import datetime as dt
import ipaddress
import json
import ssl
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def make_certificate(addresses: tuple[str, ...]) -> tuple[Path, Path]:
    """A self-signed certificate for the given IP addresses; (cert path, key path)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "cimd test host")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(a))
                                                        for a in addresses]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    directory = Path(tempfile.mkdtemp(prefix="cimd-cert-"))
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


class DocumentHost:
    """Serves JSON documents by path over HTTPS on (address, free port); counts requests per path."""

    def __init__(self, address: str, cert: Path, key: Path):
        self.documents: dict[str, tuple[int, str, bytes]] = {}
        self.hits: dict[str, int] = {}
        host = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                host.hits[self.path] = host.hits.get(self.path, 0) + 1
                status, content_type, body = host.documents.get(self.path, (404, "text/plain", b"not found"))
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer((address, 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.base = f"https://{address}:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def put_json(self, path: str, document: dict | bytes, *, status: int = 200,
                 content_type: str = "application/json") -> str:
        body = document if isinstance(document, bytes) else json.dumps(document).encode()
        self.documents[path] = (status, content_type, body)
        return self.base + path

    def client_document(self, path: str, *, name: str, redirect_uri: str, client_id: str | None = None) -> str:
        url = self.base + path
        return self.put_json(path, {"client_id": client_id or url, "client_name": name,
                                    "redirect_uris": [redirect_uri], "grant_types": ["authorization_code",
                                                                                     "refresh_token"],
                                    "response_types": ["code"], "token_endpoint_auth_method": "none"})

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
