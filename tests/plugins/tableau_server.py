"""Fixture `tableau_server`: a local Tableau Server REST API double on 127.0.0.1 for the real TSC client.

It speaks the calls tableauserverclient 0.42 makes to publish a data source: serverInfo
(version negotiation), PAT sign-in/sign-out (XML), project query with a name filter,
single-request multipart publish, and chunked publish (fileUploads initiate, append, then
publish with uploadSessionId); data source query with a name filter, and data quality warnings
(list and add by content, dataQualityWarnings/datasource/{id}; update and delete by the warning's
id, dataQualityWarnings/{dqw-id}; the by-content DELETE that clears all). Faults (401 session
expiry, 5xx) can be queued per call.

As strict as the real service where the pipeline depends on it:
- HTTPS only, with a certificate from a private test CA that certifi does not hold: a client trusts
  it only through the operating system's store (on Linux, what `SSL_CERT_FILE` names);
- one session per personal access token: a new sign-in with the same PAT ends the previous session;
- the site's content URL: the Default site is the empty one;
- data quality warnings need Data Management (`data_management=False`: 403157 Feature disabled);
- warning count by version: 2024.2 and older hold one warning per data source, newer one per type;
- `proxy_page(status)`: a proxy or single sign-on page answering HTML instead of Tableau's XML;
- `echo_requests = True`: every error answer quotes the request it refuses (its body, the PAT secret in
  it as the client XML-escaped it, and the X-Tableau-Auth token) in its summary and detail, as a
  gateway or a server in debug mode does; `pat_secret` is the secret the server accepts.
"""

from __future__ import annotations

import json
import os
import re
import ssl
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from urllib.parse import parse_qs, urlparse
from xml.etree import ElementTree as ET

import pytest

from tests.plugins.loopback_http import serve_on_loopback

NS = "http://tableau.com/api"
REST_API_VERSION = "3.24"
SITE_CONTENT_URL = "commercial"
PAT_NAME = "pipeline-pat"
PAT_SECRET = "s3cr3t-PAT-value-0123456789abcdef"
PROJECTS = {"Commercial": "proj-commercial-0001", "Finance": "proj-finance-0002"}

_API_RE = re.compile(r"^/api/(?P<version>[\d.]+)/(?P<rest>.*)$")


@dataclass
class Published:
    name: str
    project_id: str
    query: dict[str, list[str]]
    content: bytes
    chunked: bool
    chunks: int


@dataclass
class TableauServerDouble:
    url: str = ""
    site_id: str = "site-0001-luid"
    site_content_url: str = SITE_CONTENT_URL  # "" is the Default site
    product_version: str = "2025.1.0"  # one warning per type; "2024.2.0" and older: one per data source
    data_management: bool = True  # the Data Management licence that data quality warnings need
    proxy_status: int | None = None  # a proxy / SSO page in front of the server answers every call
    pat_secret: str = PAT_SECRET  # the token secret this server accepts
    echo_requests: bool = False  # error answers quote the request they refuse (body and session token)
    token_owner: dict[str, str] = field(default_factory=dict)  # session token -> PAT name
    ended_sessions: int = 0  # sessions ended by a second sign-in with the same PAT
    requests: list[tuple[str, str]] = field(default_factory=list)
    sign_ins: list[dict[str, str]] = field(default_factory=list)
    published: list[Published] = field(default_factory=list)
    faults: dict[str, list[int]] = field(default_factory=dict)
    tokens: set[str] = field(default_factory=set)
    uploads: dict[str, list[bytes]] = field(default_factory=dict)
    datasources: dict[str, tuple[str, str]] = field(default_factory=dict)  # name -> (id, project id)
    dqws: dict[str, list[dict[str, str]]] = field(default_factory=dict)  # data source id -> its warnings
    lock: threading.Lock = field(default_factory=threading.Lock)

    def fail_next(self, call: str, *statuses: int) -> None:
        """Answer the next calls of kind `call` (signin, projects, publish, append) with these statuses."""
        self.faults.setdefault(call, []).extend(statuses)

    def proxy_page(self, status: int | None) -> None:
        """From now on a proxy (or an SSO login page) answers every request with HTML (None: stop)."""
        self.proxy_status = status

    def env(self, project: str = "Commercial", secret: str = PAT_SECRET) -> dict[str, str]:
        return {
            "TABLEAU_SERVER_URL": self.url, "TABLEAU_SITE_ID": self.site_content_url or "default",
            "TABLEAU_PAT_NAME": PAT_NAME, "TABLEAU_PAT_SECRET": secret, "TABLEAU_PROJECT": project,
        }

    def calls(self, kind: str) -> int:
        return sum(1 for k, _ in self.requests if k == kind)

    def add_datasource(self, name: str, project: str = "Commercial") -> str:
        """A data source already published (as by an earlier run); returns its id."""
        datasource_id = f"ds-{uuid.uuid4().hex[:8]}"
        self.datasources[name] = (datasource_id, PROJECTS[project])
        return datasource_id

    def warnings_on(self, name: str) -> list[dict[str, str]]:
        return list(self.dqws.get(self.datasources[name][0], []))

    @property
    def one_per_asset(self) -> bool:
        """Tableau Server 2024.2 and older hold one data quality warning per asset."""
        year, release = (int(x) for x in self.product_version.split(".")[:2])
        return (year, release) <= (2024, 2)


def _xml(body: str) -> bytes:
    return f'<?xml version="1.0" encoding="UTF-8"?><tsResponse xmlns="{NS}">{body}</tsResponse>'.encode()


def _error(code: str, summary: str, detail: str) -> bytes:
    return _xml(f'<error code="{code}"><summary>{summary}</summary><detail>{detail}</detail></error>')


def _multipart(content_type: str, body: bytes) -> dict[str, bytes]:
    message = BytesParser(policy=HTTP).parsebytes(f"Content-Type: {content_type}\r\n\r\n".encode() + body)
    parts: dict[str, bytes] = {}
    for part in message.iter_parts():
        disposition = part.get("Content-Disposition", "")
        name = re.search(r'name="([^"]*)"', disposition)
        parts[name.group(1) if name else ""] = part.get_payload(decode=True) or b""
    return parts


def _handler(state: TableauServerDouble) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:  # keep pytest output clean
            pass

        def _send(self, status: int, body: bytes = b"", content_type: str = "application/xml") -> None:
            if state.echo_requests and status >= 400:
                code = re.search(rb'code="(\d+)"', body)
                received = getattr(self, "_received", b"").decode("utf-8", "replace")
                token = self.headers.get("X-Tableau-Auth", "")
                echo = _attr(f"{received} X-Tableau-Auth: {token}")
                body = _error(code.group(1).decode() if code else f"{status}000", echo[:400], echo)
                content_type = "application/xml"
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _body(self) -> bytes:
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def _route(self, method: str) -> None:
            parsed = urlparse(self.path)
            body = self._body()
            self._received = body
            match = _API_RE.match(parsed.path)
            if not match:
                self._send(404, _error("404000", "Not found", parsed.path))
                return
            rest, query = match.group("rest"), parse_qs(parsed.query)
            kind = _kind(method, rest)
            if state.proxy_status is not None:
                with state.lock:
                    state.requests.append(("proxy", self.path))
                self._send(state.proxy_status, b"<!DOCTYPE html><html><head><meta charset=utf-8><title>Sign in - Contoso Access Gateway"
                           b"</title></head><body><form action=/login>Please sign in<br></form></body></html>", "text/html")
                return
            with state.lock:
                state.requests.append((kind, self.path))
                queued = state.faults.get(kind)
                fault = queued.pop(0) if queued else None
            if fault == 401:
                with state.lock:  # the session is gone, as when a PAT signs in elsewhere
                    state.tokens.discard(self.headers.get("X-Tableau-Auth", ""))
                self._send(401, _error("401002", "Unauthorized Access", "Invalid authentication credentials"))
                return
            if fault and fault >= 500:  # as a load balancer answers: HTML, not XML
                self._send(fault, b"<html><body>Service Unavailable</body></html>", "text/html")
                return
            if fault:
                self._send(fault, _error(f"{fault}004", "Forbidden", "The user does not have permission"))
                return
            if kind not in ("serverinfo", "signin") and self.headers.get("X-Tableau-Auth") not in state.tokens:
                self._send(401, _error("401002", "Unauthorized Access", "Invalid authentication credentials"))
                return
            if kind.startswith("dqw") and not state.data_management:
                self._send(403, _error("403157", "Feature disabled",
                                       "Data quality warnings require Data Management on this site"))
                return
            getattr(self, f"_{kind}", self._unknown)(rest, query, body)

        def _unknown(self, rest: str, query: dict[str, list[str]], body: bytes) -> None:
            self._send(404, _error("404000", "Resource Not Found", rest))

        def _serverinfo(self, rest: str, query: dict[str, list[str]], body: bytes) -> None:
            self._send(200, _xml(
                f'<serverInfo><productVersion build="{state.product_version.replace(".", "")}.24.0312.0830">'
                f'{state.product_version}</productVersion>'
                f"<restApiVersion>{REST_API_VERSION}</restApiVersion></serverInfo>"
            ))

        def _signin(self, rest: str, query: dict[str, list[str]], body: bytes) -> None:
            credentials = ET.fromstring(body).find("credentials")
            assert credentials is not None
            site = credentials.find("site")
            attempt = {
                "name": credentials.get("personalAccessTokenName", ""),
                "secret": credentials.get("personalAccessTokenSecret", ""),
                "site": site.get("contentUrl", "") if site is not None else "",
            }
            state.sign_ins.append(attempt)
            if (attempt["name"], attempt["secret"], attempt["site"]) != (PAT_NAME, state.pat_secret, state.site_content_url):
                self._send(401, _error("401001", "Signin Error", "Error signing in to Tableau Server"))
                return
            token = uuid.uuid4().hex
            with state.lock:  # one session per PAT: signing in again ends the PAT's earlier session
                for old in [t for t, owner in state.token_owner.items() if owner == attempt["name"]]:
                    if old in state.tokens:
                        state.tokens.discard(old)
                        state.ended_sessions += 1
                    state.token_owner.pop(old)
                state.tokens.add(token)
                state.token_owner[token] = attempt["name"]
            self._send(200, _xml(
                f'<credentials token="{token}" estimatedTimeToExpiration="365:00:00">'
                f'<site id="{state.site_id}" contentUrl="{state.site_content_url}"/><user id="user-0001"/></credentials>'
            ))

        def _signout(self, rest: str, query: dict[str, list[str]], body: bytes) -> None:
            state.tokens.discard(self.headers.get("X-Tableau-Auth", ""))
            self._send(204)

        def _projects(self, rest: str, query: dict[str, list[str]], body: bytes) -> None:
            wanted = None
            for clause in (query.get("filter") or [""])[0].split(","):
                field_, _, rest_ = clause.partition(":")
                if field_ == "name":
                    operator, _, value = rest_.partition(":")
                    assert operator == "eq", clause
                    wanted = value
            items = [(n, i) for n, i in PROJECTS.items() if wanted is None or n == wanted]
            projects = "".join(f'<project id="{i}" name="{n}" contentPermissions="ManagedByOwner"/>' for n, i in items)
            self._send(200, _xml(
                f'<pagination pageNumber="1" pageSize="100" totalAvailable="{len(items)}"/>'
                f"<projects>{projects}</projects>"
            ))

        def _initiate(self, rest: str, query: dict[str, list[str]], body: bytes) -> None:
            upload_id = uuid.uuid4().hex
            state.uploads[upload_id] = []
            self._send(201, _xml(f'<fileUpload uploadSessionId="{upload_id}" fileSize="0"/>'))

        def _append(self, rest: str, query: dict[str, list[str]], body: bytes) -> None:
            upload_id = rest.rsplit("/", 1)[-1]
            if upload_id not in state.uploads:
                self._send(404, _error("404004", "Upload session not found", upload_id))
                return
            state.uploads[upload_id].append(_multipart(self.headers["Content-Type"], body)["tableau_file"])
            size_mb = sum(len(c) for c in state.uploads[upload_id]) // (1024 * 1024)
            self._send(200, _xml(f'<fileUpload uploadSessionId="{upload_id}" fileSize="{size_mb}"/>'))

        def _publish(self, rest: str, query: dict[str, list[str]], body: bytes) -> None:
            parts = _multipart(self.headers["Content-Type"], body)
            datasource = ET.fromstring(parts["request_payload"]).find("datasource")
            assert datasource is not None
            project = datasource.find("project")
            project_id = project.get("id", "") if project is not None else ""
            if project_id not in PROJECTS.values():
                self._send(404, _error("404005", "Project not found", project_id))
                return
            upload_id = (query.get("uploadSessionId") or [None])[0]
            if upload_id is not None:
                chunks = state.uploads.pop(upload_id)
                content, chunked = b"".join(chunks), True
            else:
                content, chunks, chunked = parts["tableau_datasource"], [b""], False
            name = datasource.get("name", "")
            state.published.append(Published(name, project_id, query, content, chunked, len(chunks)))
            with state.lock:
                known = state.datasources.get(name)
                datasource_id = known[0] if known and known[1] == project_id else f"ds-{uuid.uuid4().hex[:8]}"
                state.datasources[name] = (datasource_id, project_id)
            self._send(201, _xml(
                f'<datasource id="{datasource_id}" name="{name}" contentUrl="{name.replace("_", "")}" '
                f'type="hyper"><project id="{project_id}"/></datasource>'
            ))

        def _datasources(self, rest: str, query: dict[str, list[str]], body: bytes) -> None:
            wanted = None
            for clause in (query.get("filter") or [""])[0].split(","):
                field_, _, rest_ = clause.partition(":")
                if field_ == "name":
                    operator, _, wanted = rest_.partition(":")
                    assert operator == "eq", clause
            items = [(n, i, p) for n, (i, p) in state.datasources.items() if wanted is None or n == wanted]
            found = "".join(
                f'<datasource id="{i}" name="{n}" contentUrl="{n.replace("_", "")}" type="hyper">'
                f'<project id="{p}" name="{next(k for k, v in PROJECTS.items() if v == p)}"/></datasource>'
                for n, i, p in items
            )
            self._send(200, _xml(
                f'<pagination pageNumber="1" pageSize="100" totalAvailable="{len(items)}"/><datasources>{found}</datasources>'
            ))

        def _dqw_target(self, rest: str) -> str | None:
            datasource_id = rest.rsplit("/", 1)[-1]
            if datasource_id not in {i for i, _ in state.datasources.values()}:
                self._send(404, _error("404031", "Resource not found", datasource_id))
                return None
            return datasource_id

        def _dqw_xml(self, warnings: list[dict[str, str]]) -> bytes:
            items = "".join(
                f'<dataQualityWarning id="{w["id"]}" type="{w["type"]}" message="{_attr(w["message"])}" '
                f'isActive="{w["isActive"]}" isSevere="{w["isSevere"]}" contentId="{w["contentId"]}" '
                f'contentType="datasource" createdAt="2026-11-30T07:30:00Z" updatedAt="2026-11-30T07:30:00Z" '
                f'userDisplayName="Pipeline"><owner id="user-0001"/></dataQualityWarning>'
                for w in warnings
            )
            return _xml(f"<dataQualityWarningList>{items}</dataQualityWarningList>")

        def _dqw_list(self, rest: str, query: dict[str, list[str]], body: bytes) -> None:
            datasource_id = self._dqw_target(rest)
            if datasource_id is not None:
                self._send(200, self._dqw_xml(state.dqws.get(datasource_id, [])))

        def _dqw_add(self, rest: str, query: dict[str, list[str]], body: bytes) -> None:
            datasource_id = self._dqw_target(rest)
            if datasource_id is None:
                return
            element = ET.fromstring(body).find("dataQualityWarning")
            assert element is not None
            warning = {
                "id": f"dqw-{uuid.uuid4().hex[:8]}", "type": element.get("type", ""),
                "message": element.get("message", ""), "isActive": element.get("isActive", "true"),
                "isSevere": element.get("isSevere", "false"), "contentId": datasource_id,
            }
            assert warning["type"] in {"WARNING", "DEPRECATED", "STALE", "SENSITIVE_DATA", "MAINTENANCE"}, warning
            with state.lock:
                existing = state.dqws.setdefault(datasource_id, [])
                if state.one_per_asset and existing:
                    return self._send(409, _error("409004", "Conflict",
                                                  "This asset already has a data quality warning"))
                if any(w["type"] == warning["type"] for w in existing):
                    return self._send(409, _error("409004", "Conflict",
                                                  f"This asset already has a {warning['type']} data quality warning"))
                existing.append(warning)
            self._send(200, self._dqw_xml([warning]))

        def _dqw_by_id(self, rest: str) -> tuple[str, dict[str, str]] | None:
            warning_id = rest.rsplit("/", 1)[-1]
            for datasource_id, warnings in state.dqws.items():
                for warning in warnings:
                    if warning["id"] == warning_id:
                        return datasource_id, warning
            self._send(404, _error("404030", "Resource not found", warning_id))
            return None

        def _dqw_update(self, rest: str, query: dict[str, list[str]], body: bytes) -> None:
            found = self._dqw_by_id(rest)
            if found is None:
                return
            element = ET.fromstring(body).find("dataQualityWarning")
            assert element is not None
            with state.lock:
                found[1].update({"type": element.get("type", found[1]["type"]),
                                 "message": element.get("message", found[1]["message"]),
                                 "isActive": element.get("isActive", found[1]["isActive"]),
                                 "isSevere": element.get("isSevere", found[1]["isSevere"])})
            self._send(200, self._dqw_xml([found[1]]))

        def _dqw_delete_one(self, rest: str, query: dict[str, list[str]], body: bytes) -> None:
            found = self._dqw_by_id(rest)
            if found is not None:
                with state.lock:
                    state.dqws[found[0]].remove(found[1])
                self._send(204)

        def _dqw_put_by_content(self, rest: str, query: dict[str, list[str]], body: bytes) -> None:
            # Update addresses one warning by its id; a PUT on the data source's collection is not a method.
            self._send(405, _error("405000", "Method not allowed", "PUT on a data source's warnings"))

        def _dqw_delete(self, rest: str, query: dict[str, list[str]], body: bytes) -> None:
            datasource_id = self._dqw_target(rest)
            if datasource_id is not None:
                with state.lock:
                    state.dqws.pop(datasource_id, None)
                self._send(204)

        def do_GET(self) -> None:
            self._route("GET")

        def do_POST(self) -> None:
            self._route("POST")

        def do_PUT(self) -> None:
            self._route("PUT")

        def do_DELETE(self) -> None:
            self._route("DELETE")

    return Handler


def _kind(method: str, rest: str) -> str:
    if rest == "serverInfo":
        return "serverinfo"
    if rest == "auth/signin":
        return "signin"
    if rest == "auth/signout":
        return "signout"
    if re.fullmatch(r"sites/[^/]+/projects", rest):
        return "projects"
    if re.fullmatch(r"sites/[^/]+/fileUploads", rest) and method == "POST":
        return "initiate"
    if re.fullmatch(r"sites/[^/]+/fileUploads/[^/]+", rest) and method == "PUT":
        return "append"
    if re.fullmatch(r"sites/[^/]+/datasources", rest) and method == "POST":
        return "publish"
    if re.fullmatch(r"sites/[^/]+/datasources", rest) and method == "GET":
        return "datasources"
    if re.fullmatch(r"sites/[^/]+/dataQualityWarnings/datasource/[^/]+", rest):
        return {"GET": "dqw_list", "POST": "dqw_add", "DELETE": "dqw_delete",
                "PUT": "dqw_put_by_content"}.get(method, "unknown")
    if re.fullmatch(r"sites/[^/]+/dataQualityWarnings/[^/]+", rest):
        return {"PUT": "dqw_update", "DELETE": "dqw_delete_one"}.get(method, "unknown")
    return "unknown"


def _attr(text: str) -> str:
    return text.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;").replace(">", "&gt;")


def server_tls(pki) -> ssl.SSLContext:
    """The double's TLS: a server certificate for 127.0.0.1 signed by the private test CA."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki.server_cert_path, pki.server_key_path)
    return context


def trust_private_ca(monkeypatch: pytest.MonkeyPatch, pki) -> None:
    """Put the private CA where the operating system's trust store is read from, for this process and its
    children. On Linux truststore uses OpenSSL's default locations, which SSL_CERT_FILE overrides (the
    Windows certificate store or the macOS keychain play this part on a desktop). REQUESTS_CA_BUNDLE is
    cleared so nothing but the trust-store path can make the certificate verify."""
    monkeypatch.setenv("SSL_CERT_FILE", str(pki.ca_path))
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)


@pytest.fixture
def tableau_server(microsoft_pki, monkeypatch: pytest.MonkeyPatch) -> Iterator[TableauServerDouble]:
    """A Tableau REST API double on https://127.0.0.1:<free port> for the test's duration, its private CA
    trusted through the OS trust store path (SSL_CERT_FILE), never through certifi."""
    state = TableauServerDouble()
    trust_private_ca(monkeypatch, microsoft_pki)
    with serve_on_loopback(_handler(state), "tableau-server-double", tls=server_tls(microsoft_pki)) as url:
        state.url = url
        yield state


# --- the export script's warehouse and runner ------------------------------------------------

EXPORT_SCRIPT = (
    Path(__file__).resolve().parents[2] / "bat_file_data_refresh" / "python" / "create_hyper_files"
    / "duckdb_to_tableau_server.py"
)

SALES_SQL = """
CREATE TABLE qi_executive_daily_sales (
    order_date DATE, market VARCHAR, net_sales_gbp DECIMAL(38,2), budget_gbp DECIMAL(18,2),
    variance_pct DOUBLE, orders BIGINT, units HUGEINT, new_customers INTEGER, store VARCHAR
);
INSERT INTO qi_executive_daily_sales VALUES
    ('2026-03-01', 'UK', 12345.67, 12000.00, 0.0288, 120, 340, 7, 'Zürich'),
    ('2026-03-01', 'JP', 987654321.99, 0.00, NULL, 45, 91, NULL, '東京'),
    ('2026-03-02', 'DE', -15.50, 100.25, -1.1546, 3, 3, NULL, NULL),
    ('2024-02-29', 'IT', 0.01, NULL, NULL, 1, 1, NULL, 'Forlì ''quoted''');
CREATE TABLE int_orders_summary_daily AS
    SELECT DATE '2026-03-01' + (i % 30)::INTEGER AS order_date, ['UK','DE','IT','JP'][i % 4 + 1] AS market,
           ['TV','WEB','APP','PHONE'][i % 4 + 1] AS channel, i AS orders,
           (i * 1.25)::DECIMAL(18,2) AS net_sales_local
    FROM range(1000) r(i);
"""


@pytest.fixture
def export_warehouse(isolated_env, monkeypatch: pytest.MonkeyPatch):
    """A real DuckDB warehouse with two mart-like tables; DUCKDB_PATH points at it."""
    import duckdb

    path = isolated_env / "warehouse" / "analytics.duckdb"
    path.parent.mkdir(parents=True)
    with duckdb.connect(str(path)) as con:
        con.execute(SALES_SQL)
    monkeypatch.setenv("DUCKDB_PATH", str(path))
    return path


class _AsDagsterAsset:
    """Marker among run_export's arguments: run the script inside a Dagster run of the asset that owns
    the extract's name (pipeline.yaml exports), through Dagster Pipes, as the export assets do."""

    def __repr__(self) -> str:
        return "AS_DAGSTER_ASSET"


AS_DAGSTER_ASSET = _AsDagsterAsset()


def run_under_dagster(command: list[str], asset: str, env: dict[str, str], timeout: float):
    """`command` run by a real in-process Dagster run of an asset keyed `asset`, with a real Pipes session
    (context in the environment, messages through a temporary file); returns its CompletedProcess."""
    import dagster as dg

    done: list[subprocess.CompletedProcess] = []

    @dg.asset(name=asset)
    def export_asset(context):  # no annotation: dg is imported locally (string annotations)
        with dg.open_pipes_session(context=context, context_injector=dg.PipesEnvContextInjector(),
                                   message_reader=dg.PipesTempFileMessageReader()) as session:
            done.append(subprocess.run(command, capture_output=True, text=True, encoding="utf-8", timeout=timeout,
                                       env={**env, **session.get_bootstrap_env_vars()}))
        yield from session.get_results()
        if done[0].returncode != 0:
            raise dg.Failure(f"exit {done[0].returncode}")

    dg.materialize([export_asset], raise_on_error=False)
    return done[0]


@pytest.fixture
def run_export():
    """Run the export script as a separate process (as Dagster and analysts do); with AS_DAGSTER_ASSET among
    the arguments, inside a Dagster run of the asset that owns `--name` (run_under_dagster)."""

    def _run(*args, env: dict[str, str] | None = None, timeout: float = 180):
        command = [sys.executable, str(EXPORT_SCRIPT), *(a for a in args if a is not AS_DAGSTER_ASSET)]
        full_env = {**os.environ, **(env or {})}
        if AS_DAGSTER_ASSET in args:
            from pipeline_common.config import load_pipeline_config

            name = args[list(args).index("--name") + 1]
            [asset] = [e.asset for e in load_pipeline_config().exports if e.name.casefold() == name.casefold()]
            return run_under_dagster(command, asset, full_env, timeout)
        return subprocess.run(command, capture_output=True, text=True, encoding="utf-8", env=full_env, timeout=timeout)

    return _run


def summary(stdout: str) -> dict:
    """The export script's summary: the JSON object on the last stdout line."""
    return json.loads(stdout.strip().splitlines()[-1])
