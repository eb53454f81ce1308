"""Format declarations: a grammar `grammars/<name>.lark` plus `grammars/<name>.toml`.

The TOML says how the grammar maps onto the tree (which rules are nodes and fields, how field
values decode, which field is the tool use or the answer, the separator terminal, a reduction).
This module loads and validates it; it does not parse documents (that is `thread.parser`).
"""

from __future__ import annotations

import functools
import logging
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from thread.assets import asset_dir

log = logging.getLogger(__name__)

DECODES = ("json", "text", "children")


class ThreadFormatError(ValueError):
    """Base of every error about a format: its declaration or a document written in it."""


class FormatDeclarationError(ThreadFormatError):
    """A format's TOML or grammar is missing, malformed or inconsistent."""


class ParseError(ThreadFormatError):
    """A document does not follow its format: where, what was found and what was expected."""

    def __init__(
        self, message: str, *, line: int, column: int, offset: int, text: str, expected: list[str]
    ) -> None:
        super().__init__(f"{line}:{column}: {message}")
        self.line = line
        self.column = column
        self.offset = offset
        self.text = text
        self.expected = expected


@dataclass(frozen=True)
class FieldSpec:
    rule: str
    name: str
    decode: str  # json | text | children


@dataclass(frozen=True)
class ToolSpec:
    field: str
    name: str
    parameters: str
    result: str
    result_template: str

    def render_result(self, result_json: str) -> str:
        """The text the runtime writes after the parameters, holding `result_json`."""
        return self.result_template.replace("{result}", result_json)


@dataclass(frozen=True)
class ReduceSpec:
    node: str  # node kind whose finished nodes reduce
    keep: str  # field whose value text replaces the node


@dataclass(eq=False)
class Format:
    """A loaded, validated format declaration. `tables` builds the lexer/parser tables once."""

    name: str
    path: Path
    grammar_path: Path
    grammar: str
    start: str
    document: str
    separator: str | None
    nodes: dict[str, str]  # rule -> node kind
    fields: dict[str, FieldSpec]  # rule -> field
    tool: ToolSpec | None = None
    answer: str | None = None
    reduce: ReduceSpec | None = None
    words: dict[str, str] = field(default_factory=dict)
    lark: object = field(default=None, repr=False)  # the lark.Lark built while validating

    def field_named(self, name: str) -> FieldSpec | None:
        return next((f for f in self.fields.values() if f.name == name), None)

    @functools.cached_property
    def tables(self):  # -> thread.parser.Tables (imported lazily: parser imports this module)
        from thread.parser import build_tables

        return build_tables(self)


def load_format(name_or_path: str | Path) -> Format:
    """Load `grammars/<name>.toml` by format name, or a `.toml` declaration by path."""
    path = Path(name_or_path)
    if path.suffix != ".toml":
        if "/" in str(name_or_path) or not str(name_or_path).isidentifier():
            raise FormatDeclarationError(
                f"format {str(name_or_path)!r}: give a format name such as 'thread2' or a path to a .toml file"
            )
        path = asset_dir("grammars") / f"{name_or_path}.toml"
    return _load(path.resolve())


@functools.lru_cache(maxsize=None)
def _load(path: Path) -> Format:
    if not path.is_file():
        known = sorted(p.stem for p in path.parent.glob("*.toml") if "." not in p.stem)
        raise FormatDeclarationError(f"{path}: no such format declaration (known here: {known})")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise FormatDeclarationError(f"{path}: not valid TOML: {e}") from e
    return _Reader(path, data).read()


class _Reader:
    """Reads one declaration; every error names the file, the key, the value and what is allowed."""

    SECTIONS = ("format", "nodes", "fields", "tool", "answer", "reduce", "words")

    def __init__(self, path: Path, data: dict) -> None:
        self.path = path
        self.data = data

    def fail(self, key: str, value: object, allowed: str) -> FormatDeclarationError:
        return FormatDeclarationError(f"{self.path}: {key} = {value!r}: {allowed}")

    def table(self, key: str, required: bool = True) -> dict:
        value = self.data.get(key)
        if value is None and not required:
            return {}
        if not isinstance(value, dict):
            raise self.fail(f"[{key}]", value, "a table is required here")
        return value

    def string(self, section: dict, key: str, where: str, required: bool = True) -> str | None:
        value = section.get(key)
        if value is None and not required:
            return None
        if not isinstance(value, str) or not value:
            raise self.fail(f"{where}.{key}", value, "a non-empty string is required")
        return value

    def check_keys(self, section: dict, where: str, allowed: tuple[str, ...]) -> None:
        for key in section:
            if key not in allowed:
                raise self.fail(f"{where}.{key}", section[key], f"unknown key; allowed: {', '.join(allowed)}")

    def read(self) -> Format:
        for key in self.data:
            if key not in self.SECTIONS:
                raise self.fail(f"[{key}]", self.data[key], f"unknown section; allowed: {', '.join(self.SECTIONS)}")
        head = self.table("format")
        self.check_keys(head, "format", ("name", "grammar", "start", "separator", "document"))
        grammar_path = self.path.parent / self.string(head, "grammar", "format")
        if not grammar_path.is_file():
            raise self.fail("format.grammar", head["grammar"], f"no such file {grammar_path}")
        fmt = Format(
            name=self.string(head, "name", "format"),
            path=self.path,
            grammar_path=grammar_path,
            grammar=grammar_path.read_text(encoding="utf-8"),
            start=self.string(head, "start", "format"),
            document=self.string(head, "document", "format"),
            separator=self.string(head, "separator", "format", required=False),
            nodes=self.read_nodes(),
            fields=self.read_fields(),
            words=self.read_words(),
        )
        fmt.tool = self.read_tool(fmt)
        fmt.answer = self.read_answer(fmt)
        fmt.reduce = self.read_reduce(fmt)
        self.check_grammar(fmt)
        return fmt

    def read_nodes(self) -> dict[str, str]:
        nodes = self.table("nodes")
        for rule, kind in nodes.items():
            if not isinstance(kind, str) or not kind:
                raise self.fail(f"nodes.{rule}", kind, "a node kind (non-empty string) is required")
        return dict(nodes)

    def read_fields(self) -> dict[str, FieldSpec]:
        fields = {}
        for rule, spec in self.table("fields").items():
            where = f"fields.{rule}"
            if not isinstance(spec, dict):
                raise self.fail(where, spec, "a table { name = ..., decode = ... } is required")
            self.check_keys(spec, where, ("name", "decode"))
            decode = self.string(spec, "decode", where)
            if decode not in DECODES:
                raise self.fail(f"{where}.decode", decode, f"allowed: {', '.join(DECODES)}")
            fields[rule] = FieldSpec(rule, self.string(spec, "name", where), decode)
        names = [f.name for f in fields.values()]
        for name in names:
            if names.count(name) > 1:
                raise self.fail("fields", name, "each field name may be declared once")
        return fields

    def read_words(self) -> dict[str, str]:
        words = self.table("words", required=False)
        for key, value in words.items():
            if not isinstance(value, str):
                raise self.fail(f"words.{key}", value, "a string is required")
        return dict(words)

    def field_name(self, fmt: Format, section: dict, key: str, where: str) -> str:
        name = self.string(section, key, where)
        if fmt.field_named(name) is None:
            declared = ", ".join(f.name for f in fmt.fields.values())
            raise self.fail(f"{where}.{key}", name, f"must be a declared field name ({declared})")
        return name

    def read_tool(self, fmt: Format) -> ToolSpec | None:
        tool = self.table("tool", required=False)
        if not tool:
            return None
        keys = ("field", "name", "parameters", "result", "result_template")
        self.check_keys(tool, "tool", keys)
        names = [self.field_name(fmt, tool, key, "tool") for key in keys[:4]]
        template = self.string(tool, "result_template", "tool")
        if "{result}" not in template:
            raise self.fail("tool.result_template", template, "must contain {result}")
        return ToolSpec(*names, result_template=template)

    def read_answer(self, fmt: Format) -> str | None:
        answer = self.table("answer", required=False)
        self.check_keys(answer, "answer", ("field",))
        return self.field_name(fmt, answer, "field", "answer") if answer else None

    def read_reduce(self, fmt: Format) -> ReduceSpec | None:
        reduce = self.table("reduce", required=False)
        if not reduce:
            return None
        self.check_keys(reduce, "reduce", ("node", "keep"))
        node = self.string(reduce, "node", "reduce")
        if node not in fmt.nodes.values():
            raise self.fail("reduce.node", node, f"must be a declared node kind ({', '.join(fmt.nodes.values())})")
        return ReduceSpec(node, self.field_name(fmt, reduce, "keep", "reduce"))

    def check_grammar(self, fmt: Format) -> None:
        """Every rule and terminal the declaration names must exist in the grammar."""
        import lark

        try:
            grammar = lark.Lark(fmt.grammar, parser="lalr", start=fmt.start)
        except lark.exceptions.LarkError as e:
            raise FormatDeclarationError(f"{fmt.grammar_path}: {e}") from e
        fmt.lark = grammar
        rules = {r.origin.name for r in grammar.rules}
        terminals = {t.name for t in grammar.terminals}
        for key, rule in [*(("nodes", r) for r in fmt.nodes), *(("fields", r) for r in fmt.fields)]:
            if rule not in rules:
                raise self.fail(f"{key}.{rule}", rule, f"no rule {rule!r} in {fmt.grammar_path.name}")
        if fmt.separator is not None and fmt.separator not in terminals:
            raise self.fail("format.separator", fmt.separator, f"must be a terminal of {fmt.grammar_path.name}: {sorted(terminals)}")
        for name in fmt.words:
            if name not in terminals:
                raise self.fail(f"words.{name}", fmt.words[name], f"no terminal {name!r} in {fmt.grammar_path.name}")
