"""Grammar-constrained decoding: an llguidance grammar generated from the format's own `.lark`.

The parser's grammar (rules and terminals, as lark compiles them) is rewritten into llguidance's
Lark dialect at load time, so the two cannot drift. Bounds are applied by unrolling: node
nesting and list lengths become copies of the recursive rules, string fields get a length cap.
This module does not sample: `GrammarConstraint` gives masks and forced tokens to the decode loop.
"""

from __future__ import annotations

import itertools
import json
import logging
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import lark
import numpy as np
import torch

logger = logging.getLogger(__name__)


class ConstraintError(ValueError):
    """A format or bound that cannot be turned into an llguidance grammar."""


SPACINGS = ("canonical", "free")
CANONICAL_SPACE = {",": ", ", ":": ": "}  # json.dumps' default separators


@dataclass(frozen=True)
class Bounds:
    """Limits that keep a small model from recursing or writing forever.

    `max_depth`: nodes on one path (a top-level task is depth 1). `max_items`: nodes in one
    list below the top level. `max_steps`: nodes in the top-level list (None: unbounded, for
    long chains that the runtime prunes). `max_field_chars`: characters of one string or number
    value, quotes and escapes included (tool results, written by the runtime, are exempt).
    `spacing`: "canonical" writes a format's ignored whitespace only as one space after "," and
    ":" (json.dumps' layout; it lets the grammar force whole keys), "free" allows any run of
    ignored whitespace up to `max_whitespace` characters (None: unbounded).
    """

    max_depth: int = 3
    max_items: int = 4
    max_steps: int | None = None
    max_field_chars: int = 200
    max_whitespace: int | None = 4
    spacing: str = "canonical"

    def __post_init__(self) -> None:
        for name in ("max_depth", "max_items", "max_field_chars"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ConstraintError(f"bounds.{name}={value!r}: must be an integer >= 1")
        for name in ("max_steps", "max_whitespace"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ConstraintError(f"bounds.{name}={value!r}: must be None or an integer >= 1")
        if self.spacing not in SPACINGS:
            raise ConstraintError(f"bounds.spacing={self.spacing!r}: must be one of {SPACINGS}")


def bounds_from_config(config: dict | None) -> Bounds:
    """Bounds from a model's `thread.json` (`{"bounds": {...}}` or top-level keys)."""
    config = config or {}
    source = config.get("bounds", config)
    names = Bounds.__dataclass_fields__
    unknown = sorted(set(config.get("bounds", {})) - set(names))
    if unknown:
        raise ConstraintError(f"unknown bounds {unknown}; allowed: {sorted(names)}")
    return Bounds(**{k: source[k] for k in names if k in source})


# 1) the format declaration: the same object the parser reads


@dataclass(frozen=True)
class Declaration:
    name: str
    grammar: str  # lark text
    start: str
    node_rules: tuple[str, ...]
    field_rules: dict[str, str]  # rule -> field name
    tool: dict = field(default_factory=dict)  # field names: name, parameters, result
    compiled: Any = None  # the lark.Lark the format built while validating, if any


def load_declaration(fmt: Any) -> Declaration:
    """What the unroller needs from a format: a name, a `.toml` path or a loaded `Format`."""
    from thread.formats import Format, load_format

    fmt = fmt if isinstance(fmt, Format) else load_format(fmt)
    tool = {}
    if fmt.tool is not None:
        tool = {"name": fmt.tool.name, "parameters": fmt.tool.parameters, "result": fmt.tool.result}
    return Declaration(
        name=fmt.name,
        grammar=fmt.grammar,
        start=fmt.start,
        node_rules=tuple(fmt.nodes),
        field_rules={rule: spec.name for rule, spec in fmt.fields.items()},
        tool=tool,
        compiled=fmt.lark if isinstance(fmt.lark, lark.Lark) else None,
    )


# 2) lark's compiled grammar -> llguidance's Lark dialect, with bounds unrolled


def _regex_body(pattern: str) -> str:
    """Escape a Python regex for a `/.../` literal: bare slashes and control characters."""
    out, backslashes = [], 0
    for ch in pattern:
        if ch == "/" and backslashes % 2 == 0:
            out.append("\\/")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(ch)
        backslashes = backslashes + 1 if ch == "\\" else 0
    return "".join(out)


def _terminal_text(pattern: Any) -> str:
    if isinstance(pattern, lark.lexer.PatternStr) and not pattern.flags:
        return json.dumps(pattern.value)
    if re.search(r"\(\?<?[=!]", pattern.value):
        raise ConstraintError(
            f"terminal /{pattern.value}/ uses a lookaround, which llguidance lacks"
        )
    return f"/{_regex_body(pattern.to_regexp())}/"


def _clean(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_") or "r"


class _Unroller:
    """Writes one llguidance rule per (rule, depth, list budget) the bounds leave reachable."""

    def __init__(self, decl: Declaration, bounds: Bounds, tools: list[dict] | None) -> None:
        compiled = decl.compiled
        if compiled is None:
            try:
                compiled = lark.Lark(decl.grammar, parser="lalr", start=decl.start)
            except lark.exceptions.LarkError as exc:
                raise ConstraintError(
                    f"format {decl.name!r}: grammar does not load: {exc}"
                ) from exc
        self.decl, self.bounds, self.tools = decl, bounds, tools or []
        self.expansions: dict[str, list[list[str]]] = {}
        for rule in compiled.rules:
            self.expansions.setdefault(rule.origin.name, []).append(
                [s.name for s in rule.expansion]
            )
        self.terminals = {t.name: t.pattern for t in compiled.terminals}
        self.ignore = list(compiled.ignore_tokens)
        missing = [r for r in decl.node_rules if r not in self.expansions]
        if missing:
            raise ConstraintError(f"format {decl.name!r}: node rules {missing} not in the grammar")
        self.nodes = set(decl.node_rules)
        self.lists = self._list_rules()
        self.result_rules = {r for r, n in decl.field_rules.items() if n == decl.tool.get("result")}
        self.rules: dict[str, list[list[str]]] = {}
        self.pending: list[tuple[str, tuple]] = []
        self.names: dict[tuple, str] = {}

    def _list_rules(self) -> set[str]:
        """Rules that derive a node without passing through one: they hold siblings."""
        found: set[str] = set()
        changed = True
        while changed:
            changed = False
            for rule, alternatives in self.expansions.items():
                if rule in found or rule in self.nodes:
                    continue
                symbols = {s for alt in alternatives for s in alt}
                if symbols & (self.nodes | found):
                    found.add(rule)
                    changed = True
        return found

    # names of instances and bounded terminals
    def instance(self, rule: str, *key: Any) -> str:
        if (rule, *key) not in self.names:
            parts = [
                "u" if k is None else str(k).lower()[0] if isinstance(k, bool) else str(k)
                for k in key
            ]
            self.names[(rule, *key)] = "_".join([_clean(rule), *parts]) + f"_{len(self.names)}"
            self.pending.append((rule, key))
        return self.names[(rule, *key)]

    def terminal(self, name: str, bounded: bool) -> str:
        pattern = self.terminals[name]
        unbounded = isinstance(pattern, lark.lexer.PatternRE) and re.search(
            r"[*+]|\{\d+,\}", pattern.value
        )
        return f"T_{_clean(name).upper()}" + ("_B" if bounded and unbounded else "")

    # 1) walk: instantiate every reachable (rule, context)
    def build(self) -> str:
        start = self.instance(self.decl.start, 0, self.bounds.max_steps)
        while self.pending:
            rule, key = self.pending.pop()
            name = self.names[(rule, *key)]
            if rule in self.nodes or rule in self.lists or rule == self.decl.start:
                self.rules[name] = self._tree_alternatives(rule, *key)
            else:
                self.rules[name] = self._plain_alternatives(rule, *key)
        self._drop_empty(start)
        return self._render(start)

    def _tree_alternatives(self, rule: str, depth: int, budget: int | None) -> list[list[str]]:
        alternatives = []
        for alt in self.expansions[rule]:
            num_nodes = sum(s in self.nodes for s in alt)
            kids = [i for i, s in enumerate(alt) if s in self.lists]
            if num_nodes and depth + 1 > self.bounds.max_depth:
                continue
            if budget is not None and num_nodes > budget:
                continue
            rest = None if budget is None else budget - num_nodes
            if rest is None or not kids:
                shares = [(rest,) * len(kids)]
            else:  # split what is left among the sibling-holding rules (usually just one)
                splits = itertools.product(range(rest + 1), repeat=len(kids))
                shares = [s for s in splits if sum(s) == rest]
            for share in shares:
                budgets = dict(zip(kids, share))
                alternatives.append(
                    [self._symbol(s, depth, budgets.get(i), True) for i, s in enumerate(alt)]
                )
        return alternatives

    def _plain_alternatives(self, rule: str, bounded: bool) -> list[list[str]]:
        tool_parent = self._tool_parent(rule)
        if tool_parent and self.tools:
            return self._tool_alternatives(rule, bounded)
        inner = bounded and rule not in self.result_rules
        return [[self._symbol(s, 0, None, inner) for s in alt] for alt in self.expansions[rule]]

    def _symbol(self, symbol: str, depth: int, budget: int | None, bounded: bool) -> str:
        if symbol in self.terminals:
            return self.terminal(symbol, bounded)
        if symbol in self.nodes:
            return self.instance(symbol, depth + 1, self.bounds.max_items)
        if symbol in self.lists:
            return self.instance(symbol, depth, budget)
        return self.instance(symbol, bounded)

    # 2) declared tools: the tool name is one of theirs, the parameters follow its schema
    def _tool_fields(self) -> tuple[str | None, str | None]:
        by_name = {n: r for r, n in self.decl.field_rules.items()}
        return by_name.get(self.decl.tool.get("name")), by_name.get(
            self.decl.tool.get("parameters")
        )

    def _tool_parent(self, rule: str) -> bool:
        name_rule, params_rule = self._tool_fields()
        symbols = {s for alt in self.expansions[rule] for s in alt}
        return name_rule is not None and {name_rule, params_rule} <= symbols

    def _tool_alternatives(self, rule: str, bounded: bool) -> list[list[str]]:
        name_rule, params_rule = self._tool_fields()
        alternatives = []
        for tool, alt in itertools.product(self.tools, self.expansions[rule]):
            row = []
            for s in alt:
                if s == name_rule:
                    row.append(self._field_with_value(s, json.dumps(json.dumps(tool["name"]))))
                elif s == params_rule and self.bounds.spacing == "canonical":
                    # free spacing: a token may hold whitespace and the `{` that opens the
                    # %json sub-grammar, which llguidance cannot split; names only then
                    row.append(self._field_with_value(s, f"%json {self._schema(tool)}"))
                else:
                    row.append(self._symbol(s, 0, None, bounded))
            alternatives.append(row)
        return alternatives

    def _schema(self, tool: dict) -> str:
        """The tool's parameter schema in canonical layout, every string capped like a field."""

        def cap(node: Any) -> Any:
            if isinstance(node, list):
                return [cap(n) for n in node]
            if not isinstance(node, dict):
                return node
            node = {k: cap(v) for k, v in node.items()}
            if node.get("type") == "string" and "maxLength" not in node:
                node["maxLength"] = max(self.bounds.max_field_chars - 2, 1)
            return node

        schema = cap(tool.get("parameters") or {"type": "object"})
        schema["x-guidance"] = {
            "whitespace_flexible": False,
            "item_separator": ", ",
            "key_separator": ": ",
        }
        return json.dumps(schema)

    def _field_with_value(self, rule: str, value: str) -> str:
        """A copy of a `KEY ":" value` field rule whose value is replaced by `value`."""
        name = f"{_clean(rule)}_v{len(self.names)}"
        self.names[(rule, value)] = name
        (alt,) = self.expansions[rule]
        self.rules[name] = [[*(self.terminal(s, True) for s in alt[:-1]), value]]
        return name

    # 3) bounds can leave a rule with no alternative: remove it and every use of it
    def _drop_empty(self, start: str) -> None:
        while True:
            empty = {name for name, alts in self.rules.items() if not alts}
            if not empty:
                return
            if start in empty:
                raise ConstraintError(
                    f"bounds {self.bounds} leave format {self.decl.name!r} no document"
                )
            for name in empty:
                del self.rules[name]
            for name, alts in self.rules.items():
                self.rules[name] = [a for a in alts if not set(a) & empty]

    def _render(self, start: str) -> str:
        lines = [f"// generated from format {self.decl.name!r}: do not edit", f"start: {start}"]
        for name, alts in self.rules.items():
            body = " | ".join(" ".join(a) if a else '""' for a in alts)
            lines.append(f"{name}: {body}")
        lines += self._render_terminals()
        return "\n".join(lines) + "\n"

    def _render_terminals(self) -> list[str]:
        """Terminals, their length-capped twins, and the format's ignored whitespace.

        Canonical spacing drops the ignored terminals and writes "," and ":" with one space.
        Free spacing with a cap puts an optional, capped run of them in front of every terminal
        (llguidance's `%ignore` has no length limit); without a cap it keeps `%ignore`.
        """
        cap = f"/(?s:.){{0,{self.bounds.max_field_chars}}}/"
        canonical = self.bounds.spacing == "canonical" and bool(self.ignore)
        prefixed = not canonical and bool(self.ignore) and self.bounds.max_whitespace is not None
        lines = []
        if prefixed:
            space = " | ".join(_terminal_text(self.terminals[n]) for n in self.ignore)
            lines.append(f"T__SPACE: ({space}) & /(?s:.){{1,{self.bounds.max_whitespace}}}/")
        for name, pattern in self.terminals.items():
            if name in self.ignore:
                continue
            text = _terminal_text(pattern)
            if (
                canonical
                and isinstance(pattern, lark.lexer.PatternStr)
                and pattern.value in CANONICAL_SPACE
            ):
                text = json.dumps(CANONICAL_SPACE[pattern.value])
            variants = [(self.terminal(name, False), text)]
            if self.terminal(name, True) != variants[0][0]:
                variants.append((self.terminal(name, True), f"{text} & {cap}"))
            for terminal, body in variants:
                if prefixed:
                    lines.append(f"{terminal}_RAW: {body}")
                    body = f"T__SPACE? {terminal}_RAW"
                lines.append(f"{terminal}: {body}")
        if not canonical and not prefixed:
            lines += [f"%ignore {_terminal_text(self.terminals[n])}" for n in self.ignore]
        return lines


def llguidance_grammar(
    fmt: Any, bounds: Bounds | None = None, tools: list[dict] | None = None
) -> str:
    """The llguidance Lark text for `fmt` under `bounds`; `tools` restricts names and parameters."""
    decl = load_declaration(fmt)
    key = (decl.grammar, decl.start, json.dumps([decl.node_rules, decl.field_rules, decl.tool]))
    return _build(key, decl, bounds or Bounds(), json.dumps(tools or [], sort_keys=True))


_GRAMMARS: dict[tuple, str] = {}


def _build(key: tuple, decl: Declaration, bounds: Bounds, tools_json: str) -> str:
    """Memoised by the declaration's content, the bounds and the tools."""
    full_key = (*key, bounds, tools_json)
    if full_key not in _GRAMMARS:
        _GRAMMARS[full_key] = _Unroller(decl, bounds, json.loads(tools_json)).build()
    return _GRAMMARS[full_key]


# 3) the matcher the decode loop drives


@lru_cache(maxsize=4)
def _ll_tokenizer(tokenizer: Any) -> Any:
    import llguidance.hf

    return llguidance.hf.from_tokenizer(tokenizer)


class GrammarConstraint:
    """Token masks and forced tokens from the format's grammar, for one document.

    Bad model output is a state (`error`), not an exception: `consume` returns False and the
    constraint stops masking. Tokens the runtime writes (tool results) go through `consume` too.
    """

    def __init__(
        self,
        tokenizer: Any,
        fmt: Any = "thread2",
        bounds: Bounds | None = None,
        *,
        tools: list[dict] | None = None,
    ) -> None:
        import llguidance

        self.bounds = bounds or Bounds()
        self.grammar = llguidance_grammar(fmt, self.bounds, tools)
        self.ll_tokenizer = _ll_tokenizer(tokenizer)
        self.vocab_size = self.ll_tokenizer.vocab_size
        self.matcher = llguidance.LLMatcher(
            self.ll_tokenizer, llguidance.LLMatcher.grammar_from_lark(self.grammar), log_level=0
        )
        if self.matcher.is_error():
            raise ConstraintError(
                f"format {fmt!r}: llguidance rejects the generated grammar: {self.matcher.get_error()}"
            )
        self._error: str | None = None

    @property
    def done(self) -> bool:
        """The document is complete: only end-of-sequence may follow."""
        return self.matcher.is_stopped() and not self.matcher.is_error()

    @property
    def accepting(self) -> bool:
        return self.matcher.is_accepting()

    @property
    def error(self) -> str | None:
        return self._error

    def mask(self) -> torch.Tensor:
        """Allowed next tokens, `[vocab]` bool. After an error every token is allowed."""
        if self._error is not None:
            return torch.ones(self.vocab_size, dtype=torch.bool)
        bits = np.frombuffer(self.matcher.compute_bitmask(), dtype=np.uint8)
        allowed = np.unpackbits(bits, bitorder="little")[: self.vocab_size]
        return torch.from_numpy(allowed.astype(bool))

    def consume(self, token_ids: list[int]) -> bool:
        """Advance over tokens (the model's, forced, or written by the runtime); False on error."""
        if self._error is not None:
            return False
        num_ok = self.matcher.try_consume_tokens(list(token_ids))
        if num_ok == len(token_ids) and not self.matcher.is_error():
            return True
        bad = token_ids[num_ok] if num_ok < len(token_ids) else None
        text = self.ll_tokenizer.decode_str([bad]) if bad is not None else ""
        self._error = (
            self.matcher.get_error() or f"token {bad} ({text!r}) is not allowed by the grammar"
        )
        logger.debug("constraint error: %s", self._error)
        return False

    def forced(self) -> list[int]:
        """Tokens the grammar forces next (fast-forward); empty if there is a choice."""
        if self._error is not None:
            return []
        return list(self.matcher.compute_ff_tokens())

    def rollback(self, num_tokens: int) -> None:
        """Undo the last `num_tokens` consumed tokens."""
        if num_tokens and not self.matcher.rollback(num_tokens):
            self._error = f"rollback({num_tokens}) failed: {self.matcher.get_error()}"

    def reset(self) -> None:
        self.matcher.reset()
        self._error = None
