"""HTTP tools, declared as TIM's runtime declares them.

A declaration is `{"type": "function", "name", "description", "url", "method", "timeout",
"parameters"}`: GET sends the arguments as a query string, POST as a JSON body, and the
response's JSON (or its text) is the result. HTTP errors and timeouts are tool faults.
Only http and https URLs are accepted, for the declared URL and for any redirect.
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from thread.tools.registry import Tool, ToolDefinitionError, ToolError

log = logging.getLogger(__name__)

MAX_RESPONSE_BYTES = 1 << 20
DEFAULT_TIMEOUT_S = 10.0
REQUIRED_KEYS = ("name", "url", "method", "parameters")
ALLOWED_KEYS = ("type", "name", "description", "url", "method", "timeout", "parameters")
METHODS = ("GET", "POST")


@dataclass(frozen=True)
class HttpToolSpec:
    """One HTTP tool declaration, checked."""

    name: str
    description: str
    url: str
    method: str
    timeout: float
    parameters: dict

    @classmethod
    def from_declaration(
        cls, declaration: Mapping, where: str = "tool declaration"
    ) -> HttpToolSpec:
        """Check a declaration; errors name `where`, the key, the value and what is allowed."""
        if not isinstance(declaration, Mapping):
            raise ToolDefinitionError(
                f"{where}: expected a table/object, got {type(declaration).__name__}"
            )
        unknown = sorted(set(declaration) - set(ALLOWED_KEYS))
        if unknown:
            raise ToolDefinitionError(
                f"{where}: unknown key {unknown[0]!r}; allowed: {', '.join(ALLOWED_KEYS)}"
            )
        missing = [k for k in REQUIRED_KEYS if k not in declaration]
        if missing:
            raise ToolDefinitionError(f"{where}: missing key {missing[0]!r}")
        if declaration.get("type", "function") != "function":
            raise ToolDefinitionError(
                f"{where}: type is {declaration['type']!r}; allowed: 'function'"
            )

        method = declaration["method"]
        if not isinstance(method, str) or method.upper() not in METHODS:
            raise ToolDefinitionError(f"{where}: method is {method!r}; allowed: 'GET', 'POST'")
        url = declaration["url"]
        if not isinstance(url, str) or urllib.parse.urlsplit(url).scheme not in ("http", "https"):
            raise ToolDefinitionError(
                f"{where}: url is {url!r}; allowed: an http:// or https:// URL"
            )
        timeout = declaration.get("timeout", DEFAULT_TIMEOUT_S)
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
            raise ToolDefinitionError(f"{where}: timeout is {timeout!r}; allowed: seconds > 0")
        description = declaration.get("description", "")
        if not isinstance(description, str):
            raise ToolDefinitionError(f"{where}: description is {description!r}; allowed: a string")
        if not isinstance(declaration["parameters"], Mapping):
            raise ToolDefinitionError(f"{where}: parameters must be a JSON schema object")
        return cls(
            name=declaration["name"],
            description=description,
            url=url,
            method=method.upper(),
            timeout=float(timeout),
            parameters=dict(declaration["parameters"]),
        )


def http_tool(declaration: Mapping | HttpToolSpec, where: str = "tool declaration") -> Tool:
    """A `Tool` that calls the declared endpoint."""
    spec = (
        declaration
        if isinstance(declaration, HttpToolSpec)
        else HttpToolSpec.from_declaration(declaration, where)
    )

    def call(**arguments: object) -> object:
        return request(spec, arguments)

    try:
        return Tool(spec.name, spec.description, spec.parameters, call, timeout_s=spec.timeout)
    except ToolDefinitionError as e:
        raise ToolDefinitionError(f"{where}: {e}") from None


def load_http_tools(path: str | Path) -> list[Tool]:
    """Load HTTP tool declarations from a JSON file (a list, or `{"tools": [...]}`) or a TOML
    file (`[[tools]]` tables)."""
    path = Path(path)
    if not path.is_file():
        raise ToolDefinitionError(f"tool declarations {str(path)!r}: not a file")
    if path.suffix.lower() == ".toml":
        import tomllib

        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as e:
            raise ToolDefinitionError(f"{path}: invalid TOML: {e}") from None
    elif path.suffix.lower() == ".json":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise ToolDefinitionError(
                f"{path}:{e.lineno}:{e.colno}: invalid JSON: {e.msg}"
            ) from None
    else:
        raise ToolDefinitionError(
            f"tool declarations {str(path)!r}: suffix {path.suffix!r}; allowed: '.json', '.toml'"
        )

    declarations = data.get("tools") if isinstance(data, dict) else data
    if not isinstance(declarations, list):
        raise ToolDefinitionError(
            f"{path}: expected a list of tools (JSON) or [[tools]] tables (TOML)"
        )
    return [http_tool(d, f"{path}: tools[{i}]") for i, d in enumerate(declarations)]


def request(spec: HttpToolSpec, arguments: Mapping[str, object]) -> object:
    """Call the endpoint once; return its JSON value, or its text; raise ToolError on a fault."""
    url, data, headers = spec.url, None, {"Accept": "application/json"}
    if spec.method == "GET":
        query = urllib.parse.urlencode({k: _query_value(v) for k, v in arguments.items()})
        url = f"{url}{'&' if urllib.parse.urlsplit(url).query else '?'}{query}" if query else url
    else:
        data = json.dumps(arguments).encode("utf-8")
        headers["Content-Type"] = "application/json"

    req = urllib.request.Request(url, data=data, headers=headers, method=spec.method)
    try:
        with _opener().open(req, timeout=spec.timeout) as response:
            body = response.read(MAX_RESPONSE_BYTES + 1)
            charset = response.headers.get_content_charset() or "utf-8"
    except urllib.error.HTTPError as e:
        detail = e.read(200).decode("utf-8", errors="replace").strip()
        raise ToolError(
            f"HTTP {e.code} {e.reason} from {spec.method} {spec.url}"
            + (f": {detail}" if detail else "")
        ) from None
    except urllib.error.URLError as e:
        if isinstance(e.reason, TimeoutError):
            raise ToolError(f"no response from {spec.url} within {spec.timeout:g} s") from None
        raise ToolError(f"cannot reach {spec.url}: {e.reason}") from None
    except TimeoutError:
        raise ToolError(f"no response from {spec.url} within {spec.timeout:g} s") from None

    if len(body) > MAX_RESPONSE_BYTES:
        log.warning(
            "tool %s: response over %d bytes, reading only that much", spec.name, MAX_RESPONSE_BYTES
        )
        body = body[:MAX_RESPONSE_BYTES]
    text = body.decode(charset, errors="replace")
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _query_value(value: object) -> str:
    return value if isinstance(value, str) else json.dumps(value)


class _HttpOnlyRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        if urllib.parse.urlsplit(newurl).scheme not in ("http", "https"):
            raise ToolError(
                f"refused a redirect from {req.full_url} to {newurl!r}: not http or https"
            )
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _opener() -> urllib.request.OpenerDirector:
    return urllib.request.build_opener(_HttpOnlyRedirects)
