"""Streaming maximal-munch lexer over a grammar's terminals, one interegular DFA per terminal.

It is contextual: each token is matched only against the terminals the parser can take next
(plus the ignored ones). A token is decided the moment no longer match is possible, and the
lexer backtracks to the last accepting position when a longer candidate dies. Each character
is stepped once per live candidate through cached transitions; nothing is rescanned except
the few characters after a backtrack. It knows nothing about the grammar's rules.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import interegular
from interegular.fsm import anything_else

log = logging.getLogger(__name__)

DEAD = -1
NOT_ACCEPTING = 1 << 30
_UNKNOWN = object()

# on_token(terminal, start, end, decided_at) -> the start states of the next token, or None to stop
TokenSink = Callable[[int, int, int, int], "tuple[int, ...] | None"]


@dataclass(frozen=True)
class LexFailure:
    """The character at `offset` fits none of the live candidates of the token at `start`."""

    offset: int
    char: str
    start: int
    candidates: tuple[int, ...]  # terminal ids alive just before the character


class LexerTables:
    """The DFAs of all terminals under one numbering of states ("gids"), shared by all lexers.

    `rank` orders terminals that accept the same text: lower wins (literals before regexps).
    """

    def __init__(self, names: Sequence[str], regexps: Sequence[str], ranks: Sequence[int]) -> None:
        self.names = list(names)
        self.ranks = list(ranks)
        self.initial: list[int] = []  # terminal -> gid of its start state
        self.term_of: list[int] = []  # gid -> terminal
        self.accept_rank: list[int] = []  # gid -> rank if accepting, else a huge number
        self.stop: list[bool] = []  # gid -> accepting and no longer match possible
        self.rows: list[dict[str, int]] = []  # gid -> char -> next gid or DEAD, filled lazily
        self.loops: list = []  # gid -> regex match of a run of characters that stay in gid, or None
        self._dfas: list[_Dfa] = []  # terminal -> its DFA and where its gids begin
        for term, regexp in enumerate(regexps):
            self._add(term, regexp)

    def _add(self, term: int, regexp: str) -> None:
        fsm = interegular.parse_pattern(regexp).to_fsm()
        states = sorted(fsm.states)
        live = _live_states(fsm)
        base = len(self.term_of)
        self._dfas.append(_Dfa(fsm, states, {s: base + i for i, s in enumerate(states)}, live))
        self.initial.append(base + states.index(fsm.initial) if fsm.initial in live else DEAD)
        for state in states:
            accepting = state in fsm.finals
            extendable = any(nxt in live for nxt in fsm.map.get(state, {}).values())
            self.term_of.append(term)
            self.accept_rank.append(self.ranks[term] if accepting else NOT_ACCEPTING)
            self.stop.append(accepting and not extendable)
            self.rows.append({})
            self.loops.append(_loop_matcher(fsm, state))

    def step(self, gid: int, char: str) -> int:
        """The slow path of one transition; caches its answer in `rows`."""
        dfa = self._dfas[self.term_of[gid]]
        state = dfa.states[gid - dfa.gid_of[dfa.states[0]]]
        nxt = dfa.fsm.map.get(state, {}).get(dfa.fsm.alphabet[char])
        ngid = dfa.gid_of[nxt] if nxt is not None and nxt in dfa.live else DEAD
        self.rows[gid][char] = ngid
        return ngid


@dataclass(frozen=True)
class _Dfa:
    fsm: interegular.FSM
    states: list  # fsm states in gid order
    gid_of: dict  # fsm state -> gid
    live: set  # states that can still reach an accepting one


def _loop_matcher(fsm: interegular.FSM, state) -> Callable | None:
    """`match(text, pos)` of the longest run of characters that keep the DFA in `state`: the
    body of a string or a run of spaces is then skipped at regex speed instead of per character."""
    row = fsm.map.get(state, {})
    loops = {symbol for symbol, nxt in row.items() if nxt == state}
    if not loops:
        return None
    chars = [c for c, symbol in fsm.alphabet.items() if c is not anything_else and symbol in loops]
    if fsm.alphabet[anything_else] in loops:
        others = [c for c, symbol in fsm.alphabet.items() if c is not anything_else and symbol not in loops]
        cls = "[^" + "".join(map(re.escape, others)) + "]" if others else "(?s:.)"
    else:
        cls = "[" + "".join(map(re.escape, chars)) + "]"
    return re.compile(cls + "+").match


def _live_states(fsm: interegular.FSM) -> set:
    """States from which an accepting state is reachable."""
    back: dict = {}
    for state, row in fsm.map.items():
        for nxt in row.values():
            back.setdefault(nxt, set()).add(state)
    live, todo = set(fsm.finals), list(fsm.finals)
    while todo:
        for prev in back.get(todo.pop(), ()):
            if prev not in live:
                live.add(prev)
                todo.append(prev)
    return live


class Lexer:
    """One stream's lexing state. Tokens go to `sink`, which answers the next start states."""

    def __init__(self, tables: LexerTables, sink: TokenSink, starts: tuple[int, ...]) -> None:
        self.tables = tables
        self.sink = sink
        self.pos = 0  # characters consumed
        self.failure: LexFailure | None = None
        t = tables
        self._hot = (t.rows, t.accept_rank, t.stop, t.loops, t.term_of, t.step)  # feed's locals
        self._starts: tuple[int, ...] | None = starts  # None once the sink said stop
        self._cands: list[int] | None = None  # live gids of the token in progress
        self._start = 0
        self._accept = -1  # terminal of the longest accepting match so far
        self._accept_end = 0
        self._tail: list[str] = []  # characters after _accept_end, kept for backtracking

    @property
    def stopped(self) -> bool:
        return self._starts is None or self.failure is not None

    @property
    def in_token(self) -> bool:
        return self._cands is not None

    @property
    def token_start(self) -> int:
        return self._start

    def candidates(self) -> tuple[int, ...]:
        """Terminals the unfinished token may still become (empty between tokens)."""
        if self._cands is None:
            return ()
        return tuple(sorted({self.tables.term_of[g] for g in self._cands}))

    def feed(self, text: str) -> None:
        """Lex `text`, the next characters of the stream."""
        rows, accept_rank, stop, loops, term_of, step = self._hot
        buf, i, n = text, 0, len(text)
        cands, pos, tail = self._cands, self.pos, self._tail
        while i < n and self._starts is not None:
            if cands is None:
                cands, self._start, self._accept = self._starts, pos, -1
            # 1) one candidate (the usual case): skip a run that keeps its state, then step
            if len(cands) == 1:
                gid = cands[0]
                loop = loops[gid]
                if loop is not None and n - i > 1 and (m := loop(buf, i)) is not None:
                    j = m.end()
                    pos += j - i
                    if accept_rank[gid] < NOT_ACCEPTING:
                        self._accept, self._accept_end = term_of[gid], pos
                    elif self._accept >= 0:
                        tail.append(buf[i:j])
                    i = j
                    if i == n:
                        break
                c = buf[i]
                ngid = rows[gid].get(c)
                if ngid is None:
                    ngid = step(gid, c)
                if ngid >= 0:
                    pos += 1
                    i += 1
                    if accept_rank[ngid] < NOT_ACCEPTING:
                        self._accept, self._accept_end = term_of[ngid], pos
                        tail.clear()
                    elif self._accept >= 0:
                        tail.append(c)
                    if stop[ngid]:
                        cands = None
                        self._emit(self._start, pos, pos)
                    else:
                        cands = (ngid,)
                    continue
            # 2) several candidates: step each, keep the best accept (lowest rank)
            else:
                c = buf[i]
                new = []
                best_rank, best = NOT_ACCEPTING, -1
                for gid in cands:
                    ngid = rows[gid].get(c)
                    if ngid is None:
                        ngid = step(gid, c)
                    if ngid >= 0:
                        new.append(ngid)
                        if accept_rank[ngid] < best_rank:
                            best_rank, best = accept_rank[ngid], ngid
                if new:
                    pos += 1
                    i += 1
                    if best >= 0:
                        self._accept, self._accept_end = term_of[best], pos
                        tail.clear()
                    elif self._accept >= 0:
                        tail.append(c)
                    if best >= 0 and all(stop[g] for g in new):
                        cands = None
                        self._emit(self._start, pos, pos)
                    else:
                        cands = new
                    continue
            # 3) c kills every candidate: emit the longest accept and lex again after it
            if self._accept < 0:
                terms = tuple(sorted({term_of[g] for g in cands}))
                self.failure = LexFailure(pos, c, self._start, terms)
                break
            cands = None
            self._emit(self._start, self._accept_end, pos + 1)
            if tail:
                rest = "".join(tail)
                buf, i, n = rest + buf[i:], 0, len(rest) + n - i
                pos = self._accept_end
                tail.clear()
        self._cands, self.pos = cands, pos

    def close(self) -> bool:
        """Decide the token in progress at the end of the stream. False if it is unfinished."""
        while self._cands is not None and self._starts is not None and self.failure is None:
            if self._accept < 0:
                return False
            rest = "".join(self._tail)
            self._tail.clear()
            cands, start, pos = self._cands, self._start, self.pos
            self._cands = None
            self._emit(self._start, self._accept_end, self.pos)
            self.pos = self._accept_end
            self.feed(rest)
            if self.failure is not None and rest:
                # The stream stopped inside a longer token (`6.04e`, `6.04e+`): what is cut
                # off is an unfinished token, not a lexing error of the text so far.
                self.failure = None
                self._cands, self._start, self.pos = cands, start, pos
                return False
        return self.failure is None

    def _emit(self, start: int, end: int, decided_at: int) -> None:
        self._starts = self.sink(self._accept, start, end, decided_at)
