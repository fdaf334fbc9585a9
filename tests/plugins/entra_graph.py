"""A local HTTPS double of the Microsoft identity platform and the Microsoft Graph endpoints the
budget ingest uses, for the real msal and office365-rest-python-client libraries.

It listens on 127.0.0.1 only, with a certificate from a throw-away test CA that the clients trust
through their normal setting (`REQUESTS_CA_BUNDLE`). It speaks:
- the tenant's OpenID configuration and the v2.0 token endpoint (client credentials with a client
  secret, or with a certificate-signed client assertion whose JWT header and claims are checked and
  whose thumbprint must be the registered one), answering with AADSTS errors as Entra ID does;
- Graph v1.0: site by path, the site's drives, drive item by path, a folder's children, and the
  content download as a 302 redirect to a pre-authenticated download URL on another host name
  (`localhost`), as SharePoint does; 401, 403, 404, 429 with Retry-After and 503 on demand.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import ssl
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from urllib.parse import parse_qs, quote, unquote, urlsplit

import pytest

from tests.plugins.loopback_http import serve_on_loopback

TENANT_ID = "5d3c8b1e-2f4a-4c6b-9e7d-1a2b3c4d5e6f"
CLIENT_ID = "0b5e7a52-8c1d-4f7e-a1c3-9f2b6d4e8a10"
SITE_HOST = "contoso.sharepoint.com"
SITE_PATH = "/sites/Finance"
LIBRARY = "Shared Documents"  # the default library's URL name; its display name is "Documents"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class TestPki:
    """A test CA, the server certificate it signed, and an app certificate (what an admin uploads)."""

    ca_path: Path
    server_cert_path: Path
    server_key_path: Path
    app_pem_path: Path  # private key + certificate, PEM
    app_key_only_path: Path  # private key alone (the thumbprint cannot be checked locally)
    app_pfx_path: Path  # PKCS#12 with a password
    app_pfx_password: str
    app_thumbprint: str  # SHA-1, the deprecated form (x5t)
    app_public_key: object
    app_thumbprint_sha256: str = ""  # what Entra ID's current guidance uses (x5t#S256)


def _make_pki(folder: Path) -> TestPki:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from cryptography.hazmat.primitives.serialization import pkcs12
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
    import ipaddress

    now = dt.datetime.now(dt.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pipeline test CA")])
    ca = (
        x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    server_key = ec.generate_private_key(ec.SECP256R1())
    server = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name).public_key(server_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                    x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    app_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    app_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "budget-ingest")])
    app_cert = (
        x509.CertificateBuilder().subject_name(app_name).issuer_name(app_name).public_key(app_key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=365)).sign(app_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    key_pem = app_key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    paths = {name: folder / name for name in ("ca.pem", "server.pem", "server.key", "app.pem", "app-key.pem", "app.pfx")}
    paths["ca.pem"].write_bytes(ca.public_bytes(pem))
    paths["server.pem"].write_bytes(server.public_bytes(pem))
    paths["server.key"].write_bytes(
        server_key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    paths["app.pem"].write_bytes(key_pem + app_cert.public_bytes(pem))
    paths["app-key.pem"].write_bytes(key_pem)
    password = "pfx-" + uuid.uuid4().hex
    paths["app.pfx"].write_bytes(pkcs12.serialize_key_and_certificates(
        b"budget-ingest", app_key, app_cert, None, serialization.BestAvailableEncryption(password.encode())))
    return TestPki(
        ca_path=paths["ca.pem"], server_cert_path=paths["server.pem"], server_key_path=paths["server.key"],
        app_pem_path=paths["app.pem"], app_key_only_path=paths["app-key.pem"], app_pfx_path=paths["app.pfx"],
        app_pfx_password=password, app_thumbprint=app_cert.fingerprint(hashes.SHA1()).hex().upper(),
        app_public_key=app_key.public_key(), app_thumbprint_sha256=app_cert.fingerprint(hashes.SHA256()).hex().upper(),
    )


@dataclass
class FakeMicrosoft365:
    """State of the fake tenant and its Finance site; tests flip the switches."""

    pki: TestPki
    client_secret: str = field(default_factory=lambda: "s3cr3t~" + uuid.uuid4().hex + "/+=&")
    files: dict[str, bytes] = field(default_factory=dict)  # path inside the library -> content
    etags: dict[str, str] = field(default_factory=dict)
    granted: bool = True  # Sites.Selected grant on the site
    refuse_sha1: bool = False  # a tenant that no longer accepts SHA-1 (x5t, RS256) client assertions
    graph_delay_seconds: float = 0.0  # a slow Graph: every Graph answer waits this long
    echo_form_in_errors: bool = False  # a token endpoint that quotes the request in its error text
    fail: dict[str, list[tuple[int, dict[str, str]]]] = field(default_factory=dict)  # step -> queued failures
    token_forms: list[dict[str, list[str]]] = field(default_factory=list)
    assertions: list[tuple[dict, dict]] = field(default_factory=list)
    requests: list[tuple[str, str]] = field(default_factory=list)  # (step, path)
    downloads: list[str] = field(default_factory=list)
    access_tokens: set[str] = field(default_factory=set)
    download_tokens: dict[str, str] = field(default_factory=dict)  # tempauth -> item id
    base_url: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)
    site_id: str = field(default_factory=lambda: f"{SITE_HOST},{uuid.uuid4()},{uuid.uuid4()}")
    drive_id: str = field(default_factory=lambda: "b!" + uuid.uuid4().hex)

    @property
    def authority_host(self) -> str:
        return self.base_url

    @property
    def graph_endpoint(self) -> str:
        return self.base_url

    @property
    def token_endpoint(self) -> str:
        return f"{self.base_url}/{TENANT_ID}/oauth2/v2.0/token"

    @property
    def site_url(self) -> str:
        return f"https://{SITE_HOST}{SITE_PATH}"

    ctags: dict[str, str] = field(default_factory=dict)

    def put(self, path: str, content: bytes) -> None:
        """A new version of the file's content: its eTag and its cTag change."""
        with self.lock:
            self.files[path] = content
            self.etags[path] = f'"{{{str(uuid.uuid4()).upper()}}},{len(self.etags) + 1}"'
            self.ctags[path] = f'"c:{{{str(uuid.uuid4()).upper()}}},{len(self.ctags) + 1}"'

    def touch(self, path: str) -> None:
        """A metadata edit (a column in the library, a rename back and forth, Excel's autosave of an open
        workbook with no change): as in SharePoint, the eTag changes and the cTag does not."""
        with self.lock:
            self.etags[path] = f'"{{{str(uuid.uuid4()).upper()}}},{len(self.etags) + 1}"'

    def fail_next(self, step: str, status: int, times: int = 1, **headers: str) -> None:
        self.fail.setdefault(step, []).extend([(status, headers)] * times)

    def steps(self, step: str) -> int:
        return sum(1 for s, _ in self.requests if s == step)

    def item_id(self, path: str) -> str:
        return hashlib.sha1(path.encode()).hexdigest()[:24].upper()


def _handler(state: FakeMicrosoft365) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        # -- plumbing -----------------------------------------------------------------------
        def _send(self, status: int, body: bytes = b"", content_type: str = "application/json",
                  headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def _json(self, status: int, payload: dict, headers: dict[str, str] | None = None) -> None:
            self._send(status, json.dumps(payload).encode(), headers=headers)

        def _graph_error(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
            self._json(status, {"error": {"code": code, "message": message, "innerError": {
                "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S"),
                "request-id": str(uuid.uuid4()), "client-request-id": str(uuid.uuid4())}}}, headers)

        def _aad_error(self, status: int, error: str, code: int, text: str) -> None:
            self._json(status, {
                "error": error, "error_description": f"AADSTS{code}: {text} Trace ID: {uuid.uuid4()} "
                f"Correlation ID: {uuid.uuid4()} Timestamp: 2026-11-30 06:00:00Z",
                "error_codes": [code], "timestamp": "2026-11-30 06:00:00Z", "trace_id": str(uuid.uuid4()),
                "correlation_id": str(uuid.uuid4()), "error_uri": "https://login.microsoftonline.com/error?code=%d" % code,
            })

        def _injected(self, step: str) -> bool:
            with state.lock:
                state.requests.append((step, self.path))
                queue = state.fail.get(step)
                failure = queue.pop(0) if queue else None
            if failure is None:
                return False
            status, headers = failure
            codes = {401: "InvalidAuthenticationToken", 403: "accessDenied", 404: "itemNotFound",
                     429: "TooManyRequests", 503: "serviceNotAvailable"}
            self._graph_error(status, codes.get(status, "generalException"), f"injected {status}", headers)
            return True

        # -- identity platform ----------------------------------------------------------------
        def do_GET(self) -> None:
            split = urlsplit(self.path)
            path = unquote(split.path)
            if path.endswith("/v2.0/.well-known/openid-configuration"):
                return self._openid(path.split("/")[1])
            if path.startswith("/_download/"):
                return self._download(path.rsplit("/", 1)[-1], parse_qs(split.query))
            if not path.startswith("/v1.0/"):
                return self._graph_error(400, "BadRequest", "Invalid version")
            if not self._authorised():
                return
            self._graph(path[len("/v1.0"):])

        def _openid(self, tenant: str) -> None:
            if tenant != TENANT_ID:
                return self._aad_error(400, "invalid_tenant", 90002,
                                       f"Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID.")
            base = f"{state.base_url}/{TENANT_ID}"
            self._json(200, {
                "token_endpoint": f"{base}/oauth2/v2.0/token",
                "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                "issuer": f"{state.base_url}/{TENANT_ID}/v2.0",
                "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
                "jwks_uri": f"{state.base_url}/{TENANT_ID}/discovery/v2.0/keys",
            })

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode()
            if urlsplit(self.path).path != f"/{TENANT_ID}/oauth2/v2.0/token":
                return self._aad_error(400, "invalid_request", 900023, "Specified tenant identifier is neither a valid DNS name, nor a valid external domain.")
            if self._injected("token"):
                return
            self._token(parse_qs(body), body)

        def _token(self, form: dict[str, list[str]], raw: str) -> None:
            state.token_forms.append(form)
            echo = f" Request: {raw}" if state.echo_form_in_errors else ""
            if form.get("grant_type") != ["client_credentials"]:
                return self._aad_error(400, "unsupported_grant_type", 70003, "The app requested an unsupported grant type.")
            if form.get("client_id") != [CLIENT_ID]:
                return self._aad_error(400, "unauthorized_client", 700016,
                                       f"Application with identifier '{form.get('client_id')}' was not found in the directory.{echo}")
            if form.get("scope") != [f"{state.base_url}/.default"]:
                return self._aad_error(400, "invalid_scope", 1002012, "The provided value for scope is not valid.")
            if "client_secret" in form:
                if form["client_secret"] != [state.client_secret]:
                    return self._aad_error(401, "invalid_client", 7000215, f"Invalid client secret provided.{echo}")
            elif form.get("client_assertion_type") == [ASSERTION_TYPE]:
                problem = self._check_assertion(form.get("client_assertion", [""])[0])
                if problem:
                    return self._aad_error(401, "invalid_client", 700027, problem + echo)
            else:
                return self._aad_error(401, "invalid_client", 7000218, "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.")
            token = _b64url(json.dumps({"typ": "JWT", "alg": "none"}).encode()) + "." + _b64url(
                json.dumps({"aud": state.base_url, "roles": ["Sites.Selected"], "jti": uuid.uuid4().hex}).encode()) + "." + uuid.uuid4().hex
            state.access_tokens.add(token)
            self._json(200, {"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": token})

        def _check_assertion(self, assertion: str) -> str | None:
            """A certificate-signed client assertion as Entra ID checks it; None when accepted."""
            from cryptography.exceptions import InvalidSignature
            from cryptography.hazmat.primitives import hashes
            from cryptography.hazmat.primitives.asymmetric import padding

            try:
                header_b64, claims_b64, signature_b64 = assertion.split(".")
                header = json.loads(_b64url_decode(header_b64))
                claims = json.loads(_b64url_decode(claims_b64))
            except ValueError:
                return "Client assertion failed signature validation (malformed JWT)."
            state.assertions.append((header, claims))
            if header.get("typ") != "JWT":
                return f"Client assertion uses an unsupported header ({header.get('alg')}, {header.get('typ')})."
            if "x5t#S256" in header:  # Entra ID's current form: SHA-256 thumbprint, RSASSA-PSS
                if header.get("alg") != "PS256":
                    return f"Client assertion with x5t#S256 must be signed PS256, not {header.get('alg')}."
                thumbprint = _b64url_decode(header["x5t#S256"]).hex().upper()
                registered = state.pki.app_thumbprint_sha256
            elif "x5t" in header:  # the deprecated SHA-1 form
                if state.refuse_sha1:
                    return ("Client assertion identifies its key with a SHA-1 thumbprint (x5t), which this tenant "
                            "no longer accepts. Use x5t#S256 with PS256.")
                if header.get("alg") != "RS256":
                    return f"Client assertion uses an unsupported header ({header.get('alg')}, {header.get('typ')})."
                thumbprint = _b64url_decode(header["x5t"]).hex().upper()
                registered = state.pki.app_thumbprint
            else:
                return "Client assertion has no key identifier (x5t#S256 or x5t)."
            if thumbprint != registered:
                return ("Client assertion contains an invalid signature. [Reason - The key was not found., "
                        f"Thumbprint of key used by client: '{thumbprint}', Found key 'Start=11/30/2026 00:00:00, "
                        "End=11/30/2027 00:00:00', Please visit the Azure Portal, Graph Explorer or directly use "
                        "MS Graph to see configured keys for app Id '%s'.]" % CLIENT_ID)
            scheme = (padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.DIGEST_LENGTH)
                      if header["alg"] == "PS256" else padding.PKCS1v15())
            try:
                state.pki.app_public_key.verify(  # type: ignore[attr-defined]
                    _b64url_decode(signature_b64), f"{header_b64}.{claims_b64}".encode(), scheme, hashes.SHA256())
            except InvalidSignature:
                return "Client assertion contains an invalid signature."
            now = time.time()
            if claims.get("aud") != state.token_endpoint:
                return f"The audience claim value is invalid '{claims.get('aud')}'."
            if claims.get("iss") != CLIENT_ID or claims.get("sub") != CLIENT_ID:
                return "The issuer and subject of the client assertion must be the client ID."
            if not claims.get("jti"):
                return "The client assertion has no jti claim."
            if not (claims.get("nbf", now) - 300 <= now < claims.get("exp", 0)):
                return "The client assertion is expired or not yet valid."
            return None

        # -- Graph ------------------------------------------------------------------------------
        def _authorised(self) -> bool:
            auth = self.headers.get("Authorization", "")
            if auth.startswith("Bearer ") and auth[len("Bearer "):] in state.access_tokens:
                return True
            self._graph_error(401, "InvalidAuthenticationToken", "Access token is empty or invalid.")
            return False

        def _graph(self, path: str) -> None:
            if state.graph_delay_seconds:
                time.sleep(state.graph_delay_seconds)
            site_prefix = f"/sites/{SITE_HOST}:"
            drive_prefix = f"/drives/{state.drive_id}"
            if path.startswith(site_prefix):
                if self._injected("site"):
                    return
                if path[len(site_prefix):].rstrip(":").rstrip("/") != SITE_PATH:
                    return self._graph_error(404, "itemNotFound", "Requested site could not be found")
                if not state.granted:
                    return self._graph_error(403, "accessDenied", "Access denied")
                return self._json(200, {"id": state.site_id, "name": "Finance", "displayName": "Finance",
                                        "webUrl": state.site_url})
            if path == f"/sites/{state.site_id}/drives":
                if self._injected("drives"):
                    return
                if not state.granted:
                    return self._graph_error(403, "accessDenied", "Access denied")
                return self._json(200, {"value": [
                    {"id": state.drive_id, "name": "Documents", "driveType": "documentLibrary",
                     "webUrl": f"{state.site_url}/{quote(LIBRARY)}"},
                    {"id": "b!other", "name": "Site Assets", "driveType": "documentLibrary",
                     "webUrl": f"{state.site_url}/SiteAssets"},
                ]})
            if not path.startswith(drive_prefix):
                return self._graph_error(400, "invalidRequest", f"Unsupported path {path}")
            rest = path[len(drive_prefix):]
            if rest.startswith("/items/") and rest.endswith("/content"):
                return self._content(rest[len("/items/"):-len("/content")])
            # Children only in the forms Graph documents: root/children, items/{item-id}/children and
            # root:/{path}:/children; a double slash (root:/{path}://children) is refused as Graph does.
            if rest == "/root/children":
                return self._children("")
            if rest.startswith("/items/") and rest.endswith("/children") and rest.count("/") == 3:
                folder = next((f for f in self._folders() if state.item_id(f) == rest.split("/")[2]), None)
                if folder is None:
                    return self._graph_error(404, "itemNotFound", "The resource could not be found.")
                return self._children(folder)
            if rest.startswith("/root:/") and rest.endswith(":/children") and "//" not in rest:
                return self._children(rest[len("/root:/"):-len(":/children")].strip("/"))
            if rest.endswith("/children"):
                return self._graph_error(400, "invalidRequest", f"Invalid request: unsupported path {path}")
            if rest.startswith("/root:/"):  # root:/{path} or root:/{path}:/
                return self._item(rest[len("/root:/"):].rstrip("/").rstrip(":").strip("/"))
            self._graph_error(400, "invalidRequest", f"Unsupported path {path}")

        def _folders(self) -> set[str]:
            folders = {""}
            for name in state.files:
                parts = name.split("/")[:-1]
                folders |= {"/".join(parts[:i]) for i in range(1, len(parts) + 1)}
            return folders

        def _item(self, path: str) -> None:
            if self._injected("item"):
                return
            if path in state.files:
                return self._json(200, self._item_json(path))
            if path in self._folders():
                return self._json(200, {"id": state.item_id(path), "name": path.rsplit("/", 1)[-1], "folder": {"childCount": 1}})
            self._graph_error(404, "itemNotFound", "The resource could not be found.")

        def _item_json(self, path: str) -> dict:
            return {
                "@microsoft.graph.downloadUrl": self._download_url(path),
                "id": state.item_id(path), "name": path.rsplit("/", 1)[-1], "eTag": state.etags[path],
                **({"cTag": state.ctags[path]} if state.ctags.get(path) else {}), "size": len(state.files[path]),
                "lastModifiedDateTime": "2026-11-30T06:00:00Z",
                "file": {"mimeType": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"},
                "parentReference": {"driveId": state.drive_id, "driveType": "documentLibrary"},
            }

        def _children(self, folder: str) -> None:
            if self._injected("children"):
                return
            if folder not in self._folders():
                return self._graph_error(404, "itemNotFound", "The resource could not be found.")
            prefix = f"{folder}/" if folder else ""
            names = sorted({p[len(prefix):].split("/")[0] for p in state.files if p.startswith(prefix)})
            value = [self._item_json(prefix + n) if prefix + n in state.files
                     else {"id": state.item_id(prefix + n), "name": n, "folder": {"childCount": 1}} for n in names]
            self._json(200, {"value": value})

        def _download_url(self, path: str) -> str:
            token = uuid.uuid4().hex
            state.download_tokens[token] = path
            port = urlsplit(state.base_url).port
            return f"https://localhost:{port}/_download/{state.item_id(path)}?tempauth={token}"

        def _content(self, item_id: str) -> None:
            if self._injected("content"):
                return
            paths = [p for p in state.files if state.item_id(p) == item_id]
            if not paths:
                return self._graph_error(404, "itemNotFound", "The resource could not be found.")
            self._send(302, headers={"Location": self._download_url(paths[0])})

        def _download(self, item_id: str, query: dict[str, list[str]]) -> None:
            if self.headers.get("Authorization"):  # a pre-authenticated URL: a bearer token must not follow
                return self._send(400, b"unexpected Authorization header", "text/plain")
            path = state.download_tokens.get((query.get("tempauth") or [""])[0])
            if path is None or state.item_id(path) != item_id:
                return self._send(401, b"invalid tempauth", "text/plain")
            if self._injected("download"):
                return
            state.downloads.append(path)
            self._send(200, state.files[path], "application/octet-stream")

    return Handler


@pytest.fixture(scope="session")
def microsoft_pki(tmp_path_factory: pytest.TempPathFactory) -> TestPki:
    return _make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def microsoft365(microsoft_pki: TestPki, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeMicrosoft365]:
    """The fake tenant on https://127.0.0.1:<port>, trusted through REQUESTS_CA_BUNDLE, with the
    budget ingest's SharePoint variables set for a client secret."""
    state = FakeMicrosoft365(pki=microsoft_pki)
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(microsoft_pki.server_cert_path, microsoft_pki.server_key_path)
    with serve_on_loopback(_handler(state), "fake-microsoft365", tls=tls) as base:
        state.base_url = base
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(microsoft_pki.ca_path))
        for name, value in {
            "SHAREPOINT_SITE_URL": state.site_url, "SHAREPOINT_BUDGET_FOLDER": f"{LIBRARY}/Budget",
            "SHAREPOINT_TENANT_ID": TENANT_ID, "SHAREPOINT_CLIENT_ID": CLIENT_ID,
            "SHAREPOINT_CLIENT_SECRET": state.client_secret,
            "SHAREPOINT_AUTHORITY_HOST": base, "SHAREPOINT_GRAPH_ENDPOINT": base,
        }.items():
            monkeypatch.setenv(name, value)
        yield state


def use_certificate(monkeypatch: pytest.MonkeyPatch, path: Path, thumbprint: str, password: str = "") -> None:
    """Switch the SharePoint variables from the client secret to a certificate."""
    monkeypatch.setenv("SHAREPOINT_CLIENT_SECRET", "")
    monkeypatch.setenv("SHAREPOINT_CERTIFICATE_PATH", str(path))
    monkeypatch.setenv("SHAREPOINT_CERTIFICATE_THUMBPRINT", thumbprint)
    monkeypatch.setenv("SHAREPOINT_CERTIFICATE_PASSWORD", password)
