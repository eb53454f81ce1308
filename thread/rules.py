"""Declared prune rules: which finished parts of the tree leave the context, and when.

A rule set is data, a TOML file beside its grammar (`grammars/thread2.window.toml` is the rule
set `window` of format `thread2`). Each `[[rule]]` names a policy; a policy is a small class with
one method, `on_event`, that turns parser events into prune decisions over character spans. The
controller maps those spans to tokens and the cache manager frees them; nothing here knows tokens.
"""

from __future__ import annotations

import logging
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from thread.assets import asset_dir

logger = logging.getLogger(__name__)

MODES = ("exact", "shift", "keep")


class RuleError(ValueError):
    """A rule file that cannot be used; the message names the file, the key and what is allowed."""


@dataclass(frozen=True)
class PruneDecision:
    """Character spans to prune now, and why."""

    spans: tuple[tuple[int, int], ...]
    mode: str
    rule: str
    node: str  # path of the node the decision is about

    def to_json(self) -> dict[str, Any]:
        return {"spans": [list(s) for s in self.spans], "mode": self.mode, "rule": self.rule, "node": self.node}


class Policy:
    """One declared rule. Subclasses set `name`, `options` and implement `on_event`."""

    name: ClassVar[str]
    options: ClassVar[dict[str, type | tuple[type, ...]]] = {}

    def __init__(self, spec: dict[str, Any], *, label: str) -> None:
        self.mode: str = spec["mode"]
        self.label = label
        self.spec = spec

    def on_event(self, event: Any, tree: Any) -> list[PruneDecision]:
        raise NotImplementedError

    def decide(self, spans: list[tuple[int, int]], node: Any) -> list[PruneDecision]:
        spans = [s for s in spans if s[1] > s[0]]
        if not spans:
            return []
        return [PruneDecision(tuple(spans), self.mode, self.label, node.path)]


class Collapse(Policy):
    """When a node closes, prune the named fields (or everything but the kept ones) of that node."""

    name = "collapse"
    options = {"node": str, "prune": list, "keep": list}

    def on_event(self, event: Any, tree: Any) -> list[PruneDecision]:
        if event.kind != "node_close":
            return []
        node = tree.node(event.path)
        if node is None or node.kind != self.spec.get("node", node.kind):
            return []
        if "keep" in self.spec:
            return self.decide(_complement(node.span, _kept_spans(node, self.spec["keep"])), node)
        spans = [tree.prune_span(node.fields[f]) for f in self.spec["prune"] if f in node.fields]
        return self.decide(spans, node)


class Stack(Policy):
    """TIM's subtask stack: finished lists of a field go on a stack; only the newest `keep` stay."""

    name = "stack"
    options = {"field": str, "keep": int}

    def __init__(self, spec: dict[str, Any], *, label: str) -> None:
        super().__init__(spec, label=label)
        self.stack: list[tuple[Any, Any]] = []

    def on_event(self, event: Any, tree: Any) -> list[PruneDecision]:
        if event.kind != "field_end" or event.field != self.spec["field"]:
            return []
        node = tree.node(event.path)
        if node is None or event.field not in node.fields:
            return []
        self.stack.append((node, node.fields[event.field]))
        decisions: list[PruneDecision] = []
        while len(self.stack) > self.spec["keep"]:
            old_node, old_field = self.stack.pop(0)
            decisions += self.decide([tree.prune_span(old_field)], old_node)
        return decisions


class Window(Policy):
    """Inside a list still open, only the last `keep` finished siblings stay."""

    name = "window"
    options = {"node": str, "keep": int}

    def __init__(self, spec: dict[str, Any], *, label: str) -> None:
        super().__init__(spec, label=label)
        self.num_pruned: dict[str, int] = {}  # parent path -> finished siblings already pruned

    def on_event(self, event: Any, tree: Any) -> list[PruneDecision]:
        if event.kind != "node_close":
            return []
        node = tree.node(event.path)
        if node is None or node.parent is None or node.kind != self.spec.get("node", node.kind):
            return []
        finished = [c for c in node.parent.children if c.closed]
        done = self.num_pruned.get(node.parent.path, 0)
        excess = finished[done : max(done, len(finished) - self.spec["keep"])]
        self.num_pruned[node.parent.path] = done + len(excess)
        return [d for old in excess for d in self.decide([tree.prune_span(old)], old)]


POLICIES: dict[str, type[Policy]] = {p.name: p for p in (Collapse, Stack, Window)}


@dataclass
class RuleSet:
    """A loaded rule set: its policies, in the order the file declares them."""

    name: str
    path: Path | None
    description: str = ""
    policies: list[Policy] = field(default_factory=list)
    format_name: str = "thread2"  # the format it was loaded for, so `fresh` reloads it for the same

    def on_event(self, event: Any, tree: Any) -> list[PruneDecision]:
        return [d for p in self.policies for d in p.on_event(event, tree)]

    def fresh(self) -> RuleSet:
        """A copy with empty state, for the next run."""
        if self.path is None:
            return RuleSet(self.name, None, self.description, format_name=self.format_name)
        return load_rules(self.path, fmt_name=self.format_name)


def rules_path(name_or_path: str | Path, fmt_name: str) -> Path:
    """`window` → grammars/<fmt>.window.toml; an existing file path is taken as it is."""
    path = Path(name_or_path)
    if path.suffix == ".toml" or path.exists():
        if not path.is_file():
            raise RuleError(f"rule file {path} does not exist")
        return path
    candidate = asset_dir("grammars") / f"{fmt_name}.{name_or_path}.toml"
    if not candidate.is_file():
        known = sorted(p.name.split(".")[1] for p in asset_dir("grammars").glob(f"{fmt_name}.*.toml"))
        raise RuleError(f"no rule set {str(name_or_path)!r} for format {fmt_name!r}; known: {', '.join(known)}")
    return candidate


def load_rules(name_or_path: str | Path, fmt: Any = None, *, fmt_name: str = "thread2") -> RuleSet:
    """Load and validate a rule set. `fmt` (a loaded format) lets field names be checked."""
    if fmt is not None:
        fmt_name = fmt.name
    path = rules_path(name_or_path, fmt_name)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise RuleError(f"{path}: not valid TOML: {exc}") from None
    _check_keys(path, "", data, {"description": str, "format": str, "rule": list})
    if "format" in data and data["format"] != fmt_name:
        raise RuleError(f"{path}: format = {data['format']!r}, but it is loaded for format {fmt_name!r}")
    rules = RuleSet(path.name.split(".")[1] if path.name.count(".") >= 2 else path.stem, path, data.get("description", ""), format_name=fmt_name)
    for i, spec in enumerate(data.get("rule", [])):
        rules.policies.append(_build_policy(path, i, spec, fmt))
    return rules


def _build_policy(path: Path, i: int, spec: Any, fmt: Any) -> Policy:
    where = f"rule[{i}]"
    if not isinstance(spec, dict):
        raise RuleError(f"{path}: {where} must be a table, got {spec!r}")
    policy = spec.get("policy")
    if policy not in POLICIES:
        raise RuleError(f"{path}: {where}.policy = {policy!r}; allowed: {', '.join(POLICIES)}")
    cls = POLICIES[policy]
    _check_keys(path, where, spec, {"policy": str, "mode": str, **cls.options})
    spec = {"mode": "exact", **spec}
    if spec["mode"] not in MODES:
        raise RuleError(f"{path}: {where}.mode = {spec['mode']!r}; allowed: {', '.join(MODES)}")
    if "keep" in cls.options and cls.options["keep"] is int:
        if not isinstance(spec.get("keep"), int) or spec["keep"] < 1:
            raise RuleError(f"{path}: {where}.keep = {spec.get('keep')!r}; allowed: an integer >= 1")
    if cls is Collapse:
        if ("prune" in spec) == ("keep" in spec):
            raise RuleError(f"{path}: {where} needs exactly one of 'prune' or 'keep' (a list of field names)")
        _check_fields(path, f"{where}.{'prune' if 'prune' in spec else 'keep'}", spec.get("prune", spec.get("keep")), fmt)
    if cls is Stack:
        if "field" not in spec:
            raise RuleError(f"{path}: {where} needs 'field' (the list field whose lists are stacked)")
        _check_fields(path, f"{where}.field", [spec["field"]], fmt)
    return cls(spec, label=f"{path.name.split('.')[1] if path.name.count('.') >= 2 else path.stem}:{policy}")


def _check_keys(path: Path, where: str, table: dict, allowed: dict[str, Any]) -> None:
    for key, value in table.items():
        name = f"{where}.{key}" if where else key
        if key not in allowed:
            raise RuleError(f"{path}: unknown key {name!r}; allowed: {', '.join(allowed)}")
        if not isinstance(value, allowed[key]):
            want = allowed[key].__name__ if isinstance(allowed[key], type) else allowed[key]
            raise RuleError(f"{path}: {name} = {value!r} must be a {want}")


def _check_fields(path: Path, where: str, names: list, fmt: Any) -> None:
    if not all(isinstance(n, str) for n in names):
        raise RuleError(f"{path}: {where} = {names!r} must be a list of field names")
    if fmt is None:
        return
    known = {f.name for f in fmt.fields.values()}
    for n in names:
        if n not in known:
            raise RuleError(f"{path}: {where} names field {n!r}; allowed: {', '.join(sorted(known))}")


def _kept_spans(node: Any, names: list[str]) -> list[tuple[int, int]]:
    return [tuple(node.fields[n].span) for n in names if n in node.fields]


def _complement(span: tuple[int, int], kept: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """`span` minus the `kept` spans, as sorted disjoint spans."""
    out, cursor = [], span[0]
    for a, b in sorted(kept):
        if a > cursor:
            out.append((cursor, a))
        cursor = max(cursor, b)
    if cursor < span[1]:
        out.append((cursor, span[1]))
    return out
