"""HTTP tools against a real server on 127.0.0.1 that the test starts and stops."""

from __future__ import annotations

import json
import threading
import time
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from thread.tools import HttpToolSpec, ToolDefinitionError, ToolRegistry, http_tool, load_http_tools

QUERY_SCHEMA = {
    "type": "object",
    "properties": {"q": {"type": "string"}, "n": {"type": "integer"}},
    "required": ["q"],
    "additionalProperties": False,
}


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        url = urllib.parse.urlsplit(self.path)
        if url.path == "/echo":
            self._send(
                200, json.dumps({"method": "GET", "query": dict(urllib.parse.parse_qsl(url.query))})
            )
        elif url.path == "/text":
            self._send(200, "plain words", "text/plain")
        elif url.path == "/big":
            self._send(200, json.dumps(["row"] * 2000))
        elif url.path == "/slow":
            time.sleep(1.0)
            self._send(200, "{}")
        elif url.path.startswith("/redirect-"):
            target = {"file": "file:///etc/passwd", "ftp": "ftp://127.0.0.1:9/x"}[url.path[10:]]
            self.send_response(302)
            self.send_header("Location", target)
            self.end_headers()
        else:
            self._send(500, "it broke", "text/plain")

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        ctype = self.headers["Content-Type"]
        self._send(200, json.dumps({"method": "POST", "type": ctype, "body": json.loads(body)}))

    def _send(self, code: int, body: str, ctype: str = "application/json") -> None:
        data = body.encode()
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        try:
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (the timeout test)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def base_url(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def declaration(url: str, method: str = "GET", timeout: float = 5, **extra: object) -> dict:
    return {
        "type": "function",
        "name": "search",
        "description": "Search things",
        "url": url,
        "method": method,
        "timeout": timeout,
        "parameters": QUERY_SCHEMA,
        **extra,
    }


def call(decl: dict, arguments: dict, **kwargs: object) -> object:
    return ToolRegistry([http_tool(decl)]).call("search", arguments, **kwargs)


def test_get_sends_arguments_as_query_string(base_url: str) -> None:
    outcome = call(declaration(f"{base_url}/echo?fixed=1"), {"q": "a b&c", "n": 3})
    assert outcome.error is None
    assert outcome.result == {"method": "GET", "query": {"fixed": "1", "q": "a b&c", "n": "3"}}


def test_post_sends_arguments_as_json_body(base_url: str) -> None:
    outcome = call(declaration(f"{base_url}/echo", "post"), {"q": "x", "n": 2})
    assert outcome.result == {
        "method": "POST",
        "type": "application/json",
        "body": {"q": "x", "n": 2},
    }


def test_text_response_is_the_result(base_url: str) -> None:
    assert call(declaration(f"{base_url}/text"), {"q": "x"}).result == "plain words"


def test_http_error_is_an_error_result(base_url: str) -> None:
    outcome = call(declaration(f"{base_url}/missing"), {"q": "x"})
    assert outcome.result == {
        "error": f"HTTP 500 Internal Server Error from GET {base_url}/missing: it broke"
    }


def test_timeout_is_an_error_result(base_url: str) -> None:
    start = time.perf_counter()
    outcome = call(declaration(f"{base_url}/slow", timeout=0.2), {"q": "x"})
    assert time.perf_counter() - start < 0.9
    assert "within 0.2 s" in outcome.error


def test_unreachable_server_is_an_error_result(base_url: str) -> None:
    # The fixture's port, after a second server is closed, has nobody listening.
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    port = server.server_address[1]
    server.server_close()
    outcome = call(declaration(f"http://127.0.0.1:{port}/echo"), {"q": "x"})
    assert outcome.error.startswith(f"cannot reach http://127.0.0.1:{port}/echo")


@pytest.mark.parametrize(
    "kind, message",
    [
        ("file", "Redirection to url 'file:///etc/passwd' is not allowed"),
        ("ftp", "refused a redirect from {base_url}/redirect-ftp?q=x to 'ftp://127.0.0.1:9/x'"),
    ],
)
def test_redirect_to_a_non_http_url_is_refused(base_url: str, kind: str, message: str) -> None:
    outcome = call(declaration(f"{base_url}/redirect-{kind}"), {"q": "x"})
    assert message.format(base_url=base_url) in outcome.error


def test_large_response_is_truncated(base_url: str) -> None:
    outcome = call(declaration(f"{base_url}/big"), {"q": "x"}, max_result_chars=200)
    assert outcome.truncated and len(outcome.text) <= 200


def test_arguments_are_validated_before_any_request(base_url: str) -> None:
    outcome = call(declaration(f"{base_url}/echo"), {"q": 5})
    assert "at parameters.q: 5 is not of type 'string'" in outcome.error


def test_declaration_timeout_becomes_the_tool_time_limit() -> None:
    t = http_tool(declaration("http://127.0.0.1:9/x", timeout=3))
    assert t.timeout_s == 3.0
    assert t.declaration() == {
        "name": "search",
        "description": "Search things",
        "parameters": QUERY_SCHEMA,
    }


@pytest.mark.parametrize(
    "change, message",
    [
        ({"method": "PUT"}, "method is 'PUT'; allowed: 'GET', 'POST'"),
        (
            {"url": "file:///etc/passwd"},
            "url is 'file:///etc/passwd'; allowed: an http:// or https:// URL",
        ),
        ({"timeout": 0}, "timeout is 0; allowed: seconds > 0"),
        ({"type": "mcp"}, "type is 'mcp'; allowed: 'function'"),
        ({"headers": {}}, "unknown key 'headers'; allowed: type, name, description"),
        ({"name": "no spaces"}, "tool name 'no spaces' is invalid"),
        ({"parameters": {"type": "array"}}, "parameters schema must have type 'object'"),
    ],
)
def test_bad_declaration_names_key_value_and_allowed(change: dict, message: str) -> None:
    with pytest.raises(ToolDefinitionError) as e:
        http_tool({**declaration("http://127.0.0.1:9/x"), **change}, "tools.json: tools[0]")
    assert str(e.value).startswith("tools.json: tools[0]: ")
    assert message in str(e.value)


def test_missing_key_is_named() -> None:
    decl = declaration("http://127.0.0.1:9/x")
    del decl["url"]
    with pytest.raises(ToolDefinitionError, match="missing key 'url'"):
        HttpToolSpec.from_declaration(decl)


def test_declarations_load_from_json_and_toml(tmp_path: Path) -> None:
    json_path = tmp_path / "tools.json"
    json_path.write_text(json.dumps({"tools": [declaration("http://127.0.0.1:9/a")]}))
    toml_path = tmp_path / "tools.toml"
    toml_path.write_text(
        "[[tools]]\n"
        'name = "search"\nurl = "http://127.0.0.1:9/a"\nmethod = "POST"\ntimeout = 2.5\n'
        '[tools.parameters]\ntype = "object"\nrequired = ["q"]\n'
        '[tools.parameters.properties.q]\ntype = "string"\n'
    )
    [from_json] = load_http_tools(json_path)
    [from_toml] = load_http_tools(toml_path)
    assert from_json.parameters == QUERY_SCHEMA and from_json.timeout_s == 5.0
    assert from_toml.parameters == {
        "type": "object",
        "required": ["q"],
        "properties": {"q": {"type": "string"}},
    }
    assert from_toml.timeout_s == 2.5


def test_bad_declaration_file_names_file_and_index(tmp_path: Path) -> None:
    path = tmp_path / "tools.json"
    path.write_text(json.dumps([declaration("http://127.0.0.1:9/a"), {"name": "x"}]))
    with pytest.raises(ToolDefinitionError, match=r"tools.json: tools\[1\]: missing key 'url'"):
        load_http_tools(path)
    path.write_text("{")
    with pytest.raises(ToolDefinitionError, match=r"tools.json:1:2: invalid JSON"):
        load_http_tools(path)
