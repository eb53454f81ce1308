"""Streaming LALR parser: lark builds the tables, this module drives them and emits events.

After every shift it applies eager default reductions (a state whose every action reduces by
the same rule reduces at once), so a field or node ends on its own last character rather than
one token later. Node and field starts come from the LR(0) item sets: a state whose kernel holds
`rule: X . ...` has just begun `rule` at X; a state whose every kernel item waits for the same
nonterminal predicts that rule next. All of it is driven by the format declaration; nothing
here knows Thread-2 or PENCIL. Bad text puts the parser in an error state; `feed` never raises.
"""

from __future__ import annotations

import codecs
import json
import logging
from dataclasses import dataclass

import lark
from lark.common import ParserConf
from lark.parsers.lalr_analysis import LALR_Analyzer, Shift

from thread.formats import Format, FormatDeclarationError, ParseError, load_format
from thread.lexer import Lexer, LexerTables, LexFailure
from thread.tree import Field, Node, TextBuffer, Tree

log = logging.getLogger(__name__)
# Deeper documents are refused: no task tree needs it, and the tree's and json's recursion would
# run out of stack long before a parser limit would.
MAX_NESTING = 256

END = "$END"
NODE, FIELD = 1, 2


@dataclass(frozen=True, slots=True)
class Event:
    kind: str  # node_open | field_start | field_end | tool_ready | node_close | done | error
    path: str  # node path "0.2.1" ("" = the document itself)
    offset: int  # character offset at which the event was decided
    field: str | None = None
    span: tuple[int, int] | None = None
    value: object = None
    message: str | None = None

    def to_json(self) -> dict:
        out = {"kind": self.kind, "path": self.path, "offset": self.offset}
        for key in ("field", "span", "value", "message"):
            value = getattr(self, key)
            if value is not None:
                out[key] = list(value) if key == "span" else value
        return out


@dataclass(frozen=True, slots=True)
class RuleInfo:
    origin: str
    size: int
    role: int  # 0, NODE or FIELD
    name: str  # node kind or field name


@dataclass
class Tables:
    """Everything a Parser needs, built once per format."""

    lexer: LexerTables
    terminals: list[str]  # terminal id -> name; the last one is $END
    literal: list[bool]  # terminal id -> its pattern is a plain string
    words: list[str]  # terminal id -> how messages name it
    ignored: frozenset[int]
    ignored_names: frozenset[str]
    rules: list[RuleInfo]
    actions: list[dict[int, int]]  # state -> terminal -> shift target (>= 0) or ~rule (< 0)
    gotos: list[dict[str, int]]  # state -> nonterminal -> state
    default_reduce: list[int]  # state -> rule reduced whatever comes next, or -1
    starts: list[tuple[int, ...]]  # state -> lexer start gids of the terminals it accepts
    opens: list[tuple[str, ...]]  # state -> tracked rules begun by the symbol just pushed
    predicts: list[str | None]  # state -> tracked rule that must come next
    roles: dict[str, tuple[int, str]]  # tracked origin -> (role, node kind or field name)
    start_state: int
    accept_state: int


def build_tables(fmt: Format) -> Tables:
    """Build the LALR(1) tables with lark and the lexer's DFAs for `fmt`."""
    grammar = fmt.lark or lark.Lark(fmt.grammar, parser="lalr", start=fmt.start)
    analyzer = LALR_Analyzer(ParserConf(grammar.rules, {}, [fmt.start]), debug=True, strict=True)
    try:
        analyzer.compute_lalr()
    except lark.exceptions.GrammarError as e:
        raise FormatDeclarationError(f"{fmt.grammar_path}: not LALR(1): {e}") from e

    # 1) terminals, in the order that breaks ties: priority, then literals, then longer literals
    defs = sorted(
        grammar.terminals,
        key=lambda t: (-t.priority, t.pattern.type != "str", -len(t.pattern.value), t.name),
    )
    names = [t.name for t in defs] + [END]
    term_id = {name: i for i, name in enumerate(names)}
    lexer = LexerTables([t.name for t in defs], [t.pattern.to_regexp() for t in defs], range(len(defs)))
    words = [fmt.words.get(t.name) or _default_word(t) for t in defs] + ["end of input"]
    ignored = frozenset(term_id[name] for name in grammar.ignore_tokens)

    # 2) rules, and which of them are nodes and fields
    roles = {rule: (NODE, kind) for rule, kind in fmt.nodes.items()}
    roles |= {rule: (FIELD, spec.name) for rule, spec in fmt.fields.items()}
    rule_id = {rule: i for i, rule in enumerate(grammar.rules)}
    rules = [
        RuleInfo(r.origin.name, len(r.expansion), *roles.get(r.origin.name, (0, "")))
        for r in grammar.rules
    ]

    # A rule that always begins with a terminal is seen to begin at that terminal; any other
    # tracked rule (one that may be empty, say) begins where the grammar first demands it.
    led = {}
    for r in grammar.rules:
        first_is_term = bool(r.expansion) and r.expansion[0].is_term
        led[r.origin.name] = led.get(r.origin.name, True) and first_is_term
    predictable = {rule for rule in roles if not led.get(rule, True)}

    # 3) states: actions, gotos, default reductions, and where tracked rules begin
    table = analyzer.parse_table
    state_id = {closure: i for i, closure in enumerate(table.states)}
    actions, gotos, default_reduce, starts, opens, predicts = [], [], [], [], [], []
    for closure, row in table.states.items():
        act, goto = {}, {}
        for symbol, (action, arg) in row.items():
            if symbol not in term_id:
                goto[symbol] = state_id[arg]
            elif action is Shift:
                act[term_id[symbol]] = state_id[arg]
            else:
                act[term_id[symbol]] = ~rule_id[arg]
        actions.append(act)
        gotos.append(goto)
        reduces = set(act.values())
        default_reduce.append(~reduces.pop() if len(reduces) == 1 and min(act.values()) < 0 else -1)
        starts.append(_start_gids(lexer, set(act) | ignored))
        kernel = [rp for rp in closure if rp.index > 0]
        opens.append(tuple(sorted({rp.rule.origin.name for rp in kernel if rp.index == 1} & roles.keys())))
        waiting = {rp.next.name for rp in kernel if not rp.is_satisfied}
        satisfied = any(rp.is_satisfied for rp in kernel)
        predicted = waiting.pop() if len(waiting) == 1 and not satisfied else None
        predicts.append(predicted if predicted in predictable else None)

    start_state = state_id[table.start_states[fmt.start]]
    return Tables(
        lexer=lexer,
        terminals=names,
        literal=[t.pattern.type == "str" for t in defs] + [True],
        words=words,
        ignored=ignored,
        ignored_names=frozenset(grammar.ignore_tokens),
        rules=rules,
        actions=actions,
        gotos=gotos,
        default_reduce=default_reduce,
        starts=starts,
        opens=opens,
        predicts=predicts,
        roles=roles,
        start_state=start_state,
        accept_state=gotos[start_state][fmt.start],
    )


def _default_word(terminal) -> str:
    if terminal.pattern.type == "str":
        return repr(terminal.pattern.value)
    return terminal.name.lower()


def _start_gids(lexer: LexerTables, terms: set[int]) -> tuple[int, ...]:
    return tuple(lexer.initial[t] for t in sorted(terms) if t < len(lexer.initial) and lexer.initial[t] >= 0)


class Parser:
    """Parse one stream of text in a format; see docs/design.md, "Parser events"."""

    def __init__(self, fmt: str | Format = "thread2") -> None:
        self.format = fmt if isinstance(fmt, Format) else load_format(fmt)
        self.tables: Tables = self.format.tables
        self.lexemes: list[tuple[str, int, int]] = []
        self.tree = Tree(self.format, TextBuffer(), self.lexemes)
        self.error: ParseError | None = None
        self.status = "open"  # open | done | incomplete | error
        tables = self.tables
        self._states = [tables.start_state]  # LR stack; symbol k spans (_starts[k], _ends[k])
        self._starts = [0]
        self._ends = [0]
        self._open: list[tuple[str, int, Node | Field]] = []  # (rule, stack depth, item)
        self._nodes: list[Node] = [self.tree.root]
        self._events: list[Event] = []
        self._decided = 0
        self._decoder = codecs.getincrementaldecoder("utf-8")()
        self._lexer = Lexer(tables.lexer, self._on_token, tables.starts[tables.start_state])

    @property
    def text(self) -> str:
        return str(self.tree.text)

    def expected(self) -> list[str]:
        """Names of the terminals the parser can take next ("$END" once the document is whole)."""
        return [] if self.error is not None else self._expected_words()

    def incomplete_message(self) -> str:
        """For a stream that ended unfinished: "LINE:COLUMN: unexpected end of input; ..."."""
        line, column = self._line_column(len(self.tree.text))
        words = self.tables.words
        unfinished = self._lexer.candidates()
        if unfinished:
            at = self._line_column(self._lexer.token_start)
            inside = " or ".join(words[t] for t in unfinished)
            return f"{line}:{column}: unexpected end of input inside {inside} that starts at {at[0]}:{at[1]}"
        names = [words[self.tables.terminals.index(t)] for t in self._expected_words()]
        return f"{line}:{column}: unexpected end of input; expected {_alternatives(names)}"

    # 1) input
    def feed(self, chunk: str | bytes) -> list[Event]:
        """Parse the next piece of the stream; returns the events it decided."""
        if self.error is not None or self.status == "incomplete":
            return []
        if type(chunk) is not str:
            try:
                chunk = self._decoder.decode(chunk)
            except UnicodeDecodeError as e:  # parse what came before the bad byte, then stop there
                self._decoder.reset()
                events = self.feed(e.object[: e.start].decode("utf-8"))
                if self.error is None:
                    byte = e.object[e.start]
                    self._fail(len(self.tree.text), f"invalid UTF-8 byte 0x{byte:02x} ({e.reason})", "", [])
                return events + self._take()
        self.tree.text.append(chunk)
        lexer = self._lexer
        lexer.feed(chunk)
        if lexer.failure is not None and self.error is None:
            self._fail_lexing(lexer.failure)
        events = self._events
        if not events:
            return []
        self._events = []
        return events

    def close(self) -> list[Event]:
        """End the stream. An unfinished document leaves status "incomplete", not an error."""
        if self.error is not None or self.status == "incomplete":
            return []
        try:
            tail = self._decoder.decode(b"", final=True)
        except UnicodeDecodeError as e:
            self._fail(len(self.tree.text), f"truncated UTF-8 ({e.reason})", "", [])
            return self._take()
        if tail:
            self.feed(tail)
        if self.error is None and self._lexer.close() and self.error is None:
            self._finish()
        if self._lexer.failure is not None and self.error is None:
            self._fail_lexing(self._lexer.failure)
        if self.error is None and not self.tree.complete:
            self.status = "incomplete"
        return self._take()

    def _take(self) -> list[Event]:
        events, self._events = self._events, []
        return events

    # 2) the LALR driver
    def _on_token(self, term: int, start: int, end: int, decided: int) -> tuple[int, ...] | None:
        tables = self.tables
        self.lexemes.append((tables.terminals[term], start, end))
        if term in tables.ignored:
            return tables.starts[self._states[-1]]
        self._decided = max(self._decided, decided)
        if not self._push(term, start, end):
            return None
        return tables.starts[self._states[-1]]

    def _push(self, term: int, start: int, end: int) -> bool:
        tables, states = self.tables, self._states
        while True:
            action = tables.actions[states[-1]].get(term)
            if action is None:
                self._fail_unexpected(term, start, end)
                return False
            if action >= 0:
                break
            self._reduce(~action)
        states.append(action)
        self._starts.append(start)
        self._ends.append(end)
        self._after_push(start, end)
        if len(self._nodes) > MAX_NESTING + 1:  # the root is not nested
            text = self.tree.text.slice(start, end)
            self._fail(start, f"nodes nested deeper than {MAX_NESTING}", text, [], words=False)
            return False
        rule = tables.default_reduce[states[-1]]
        while rule >= 0 and not self.tree.complete:
            self._reduce(rule)
            rule = tables.default_reduce[states[-1]]
        return True

    def _reduce(self, rule_id: int) -> None:
        tables, states = self.tables, self._states
        info = tables.rules[rule_id]
        n = info.size
        if n:
            start, end, last = self._starts[-n], self._ends[-1], (self._starts[-1], self._ends[-1])
            del states[-n:], self._starts[-n:], self._ends[-n:]
        else:
            start = end = self._ends[-1]
            last = (end, end)
        if info.role:
            self._close(info, len(states), (start, end), last)
        states.append(tables.gotos[states[-1]][info.origin])
        self._starts.append(start)
        self._ends.append(end)
        if states[-1] == tables.accept_state:
            self._done(start, end)
        else:
            self._after_push(start, end)

    def _finish(self) -> None:
        """Feed the end of input: reduce what it completes; stop quietly if it cannot."""
        end = self.tables.terminals.index(END)
        self._decided = len(self.tree.text)
        while not self.tree.complete:
            action = self.tables.actions[self._states[-1]].get(end)
            if action is None or action >= 0:
                return
            self._reduce(~action)

    # 3) events and the tree
    def _after_push(self, start: int, end: int) -> None:
        depth = len(self._states) - 1
        for rule in self.tables.opens[self._states[-1]]:
            self._begin(rule, depth, start)
        predicted = self.tables.predicts[self._states[-1]]
        if predicted is not None:
            self._begin(predicted, depth + 1, end)

    def _begin(self, rule: str, depth: int, start: int) -> Node | Field:
        for open_rule, open_depth, item in reversed(self._open):
            if open_depth < depth:
                break
            if open_rule == rule and open_depth == depth:
                return item
        role, name = self.tables.roles[rule]
        node = self._nodes[-1]
        if role == NODE:
            item = Node(node.child_path(len(node.children)), name, (start, None), parent=node)
            self.tree.add(item)
            self._nodes.append(item)
            self._emit("node_open", item.path)
        else:
            parent = None
            for _, _, open_item in reversed(self._open):
                parent = open_item.name if isinstance(open_item, Field) else None
                break
            item = Field(name, (start, None), parent=parent)
            node.fields[name] = item
            self._emit("field_start", node.path, field=name)
        self._open.append((rule, depth, item))
        return item

    def _close(self, info: RuleInfo, depth: int, span: tuple[int, int], last: tuple[int, int]) -> None:
        while self._open and self._open[-1][1] > depth:
            log.debug("dropping %s: its rule never completed", self._open.pop())
        if not self._open or self._open[-1][:2] != (info.origin, depth):
            self._begin(info.origin, depth, span[0])
        _, _, item = self._open.pop()
        if isinstance(item, Node):
            item.span, item.closed = span, True
            self._nodes.pop()
            self._emit("node_close", item.path, span=span)
            return
        node = self._nodes[-1]
        item.span, item.value_span, item.closed = span, last, True
        try:
            item.value = self._decode(item, node)
        except (ValueError, RecursionError) as e:
            self._fail(span[0], f"cannot decode field {item.name!r}: {e}", "", [], words=False)
            return
        value = [c.path for c in item.value] if isinstance(item.value, list) and self._is_children(item) else item.value
        self._emit("field_end", node.path, field=item.name, span=span, value=value)
        tool = self.format.tool
        if tool is not None and item.name == tool.parameters:
            name = node.fields.get(tool.name)
            ready = {"name": name.value if name else None, "parameters": item.value}
            self._emit("tool_ready", node.path, field=item.name, value=ready)

    def _is_children(self, item: Field) -> bool:
        return self.tree._decode[item.name] == "children"

    def _decode(self, item: Field, node: Node) -> object:
        how = self.tree._decode[item.name]
        if how == "children":
            return self.tree.children_in(node, item)
        text = self.tree.text.slice(*item.value_span)
        return json.loads(text) if how == "json" else text

    def _done(self, start: int, end: int) -> None:
        root = self.tree.root
        root.span, root.closed = (start, end), True
        self.tree.complete = True
        self.status = "done"
        self._emit("done", "")

    def _emit(self, kind: str, path: str, **extra) -> None:
        self._events.append(Event(kind, path, self._decided, **extra))

    # 4) errors: recorded, never raised out of feed
    def _fail_unexpected(self, term: int, start: int, end: int) -> None:
        text = self.tree.text.slice(start, min(end, start + 40))
        self._fail(start, f"unexpected {text!r}", text, self._expected_words())

    def _fail_lexing(self, failure: LexFailure) -> None:
        """A character no live candidate takes. Within a literal (a key, a keyword) it is the
        token that is unexpected; within a string or number it is that character."""
        tables = self.tables
        if failure.start == failure.offset or all(tables.literal[t] for t in failure.candidates):
            text = self.tree.text.slice(failure.start, failure.offset + 1)
            self._fail(failure.start, f"unexpected {text!r}", text, self._expected_words())
            return
        inside = " or ".join(tables.words[t] for t in failure.candidates)
        line, column = self._line_column(failure.start)
        message = f"unexpected {failure.char!r} inside {inside} that starts at {line}:{column}"
        expected = [tables.terminals[t] for t in failure.candidates]
        self._fail(failure.offset, message, failure.char, expected, words=False)

    def _expected_words(self) -> list[str]:
        if self.tree.complete:
            return [END]
        act = self.tables.actions[self._states[-1]]
        return [self.tables.terminals[t] for t in sorted(act) if t not in self.tables.ignored]

    def _fail(self, offset: int, message: str, text: str, expected: list[str], words: bool = True) -> None:
        if words and expected:
            names = [self.tables.words[self.tables.terminals.index(t)] for t in expected]
            message += "; expected " + _alternatives(names)
        line, column = self._line_column(offset)
        self.error = ParseError(message, line=line, column=column, offset=offset, text=text, expected=expected)
        self.status = "error"
        self._events.append(Event("error", self._nodes[-1].path, offset, message=str(self.error)))

    def _line_column(self, offset: int) -> tuple[int, int]:
        before = self.tree.text.slice(0, offset)
        return before.count("\n") + 1, offset - (before.rfind("\n") + 1) + 1


def _alternatives(names: list[str]) -> str:
    return ", ".join(names[:-1]) + " or " + names[-1] if len(names) > 1 else "".join(names)


def parse(text: str | bytes, fmt: str | Format = "thread2") -> Parser:
    """Parse a whole text at once; the returned parser holds the tree, events are discarded."""
    parser = Parser(fmt)
    parser.feed(text)
    parser.close()
    return parser
