"""Family `arith`: integer expressions with + - * and parentheses, read as a tape.

Task text: the expression itself, e.g. `((17+25)*3)-(48-19)`; spaces are allowed. The model
reads it through `lookup`, whose table (`tape_table`) maps each position ("0", "1", ...) to a
token (a number, an operator or a parenthesis) and the position after the last token to `)`,
the parenthesis that closes the whole expression.

A step's thought is the state `POS:STACK` it starts from: the next position to read and what
its level holds, at most `a op b op`. The step either reads the token at POS, or calls
`calculator` on the end of the stack (`a*b` as soon as b is read; `a+b` or `a-b` once the
operator after b is read), and concludes the new state. Reading `(` opens subtasks that
evaluate the group from an empty stack; that step concludes the state after the group's `)`,
with the group's value pushed. A level ends when its stack is `VALUE)`; at the top level that
value is the answer. So a step needs only its own thought and its last sibling, the window
rule keeps a fixed number of steps per open level, and nothing is ever copied in bulk.
"""

from __future__ import annotations

import itertools
import random
import re
from dataclasses import dataclass

from thread.tasks import Instance, TaskTextError

ALLOWED = set("0123456789+-*()")
MAX_NESTING = 100  # the parser and the gold tree recurse once per level


@dataclass
class Node:
    """A parsed (sub)expression: a literal, or `left op right`."""

    value: int
    op: str | None = None
    left: Node | None = None
    right: Node | None = None


class _Parser:
    def __init__(self, text: str, original: str) -> None:
        self.s, self.original, self.i = text, original, 0

    def fail(self, what: str) -> TaskTextError:
        got = self.s[self.i] if self.i < len(self.s) else "end of text"
        return TaskTextError(
            f"expression {self.original!r}: at character {self.i} (spaces removed) "
            f"expected {what}, got {got!r}"
        )

    def expr(self) -> Node:
        node = self.term()
        while self.i < len(self.s) and self.s[self.i] in "+-":
            node = self.binary(node, self.term)
        return node

    def term(self) -> Node:
        node = self.factor()
        while self.i < len(self.s) and self.s[self.i] == "*":
            node = self.binary(node, self.factor)
        return node

    def binary(self, left: Node, operand) -> Node:
        op = self.s[self.i]
        self.i += 1
        right = operand()
        value = {"+": left.value + right.value, "-": left.value - right.value}.get(
            op, left.value * right.value
        )
        return Node(value, op, left, right)

    def factor(self) -> Node:
        start = self.i
        if self.i < len(self.s) and self.s[self.i] == "(":
            self.i += 1
            node = self.expr()
            if self.i >= len(self.s) or self.s[self.i] != ")":
                raise self.fail("')'")
            self.i += 1
            return node
        while self.i < len(self.s) and self.s[self.i].isdigit():
            self.i += 1
        if self.i == start:
            raise self.fail("a number or '('")
        return Node(int(self.s[start : self.i]))


def max_nesting(text: str) -> int:
    """How deep the parentheses of `text` nest (0 without any)."""
    return max(itertools.accumulate({"(": 1, ")": -1}.get(c, 0) for c in text))


def parse(expression: str) -> tuple[str, Node]:
    """(space-free text, root node) of an integer expression with + - * and parentheses."""
    s = "".join(expression.split())
    bad = set(s) - ALLOWED
    if not s or bad:
        raise TaskTextError(
            f"expression {expression!r}: only digits, + - * ( ) and spaces are allowed"
            + (f", got {''.join(sorted(bad))!r}" if bad else ", got an empty text")
        )
    if (nesting := max_nesting(s)) > MAX_NESTING:
        raise TaskTextError(
            f"expression {expression!r}: parentheses nest {nesting} deep, more than {MAX_NESTING}"
        )
    p = _Parser(s, expression)
    root = p.expr()
    if p.i != len(s):
        raise p.fail("an operator or the end")
    return s, root


def _calc(expression: str, value: int) -> dict:
    return {"tool_name": "calculator", "parameters": {"expression": expression}, "tool_result": value}


# The tape and the gold steps ----------------------------------------------------------------

END = ")"  # what the tape holds past the last token
SYMBOLS = frozenset("+-*)")  # what a stack holds besides numbers


def tape(expression: str) -> list[str]:
    """The tokens of an expression, in reading order (refuses what `parse` refuses)."""
    s, _ = parse(expression)
    return re.findall(r"[0-9]+|[-+*()]", s)


def tape_table(expression: str) -> dict[str, str]:
    """The `lookup` table that presents `expression` to the model: position -> token."""
    tokens = tape(expression) + [END]
    return {str(i): token for i, token in enumerate(tokens)}


def _lookup(at: int, token: str) -> dict:
    return {"tool_name": "lookup", "parameters": {"key": str(at)}, "tool_result": token}


def _level(tokens: list[str], at: int) -> tuple[list[dict], int, int]:
    """(steps, value, position after its closing `)`) of the level whose first token is at `at`."""
    steps: list[dict] = []
    stack: list[str] = []

    def step(thought: str, tooluse: dict, subtasks: list[dict] | None = None) -> None:
        task = {"thought": thought, "tooluse": tooluse}
        if subtasks is not None:
            task["subtasks"] = subtasks
        task["conclusion"] = f"{at}:{''.join(stack)}"
        steps.append(task)

    while True:
        thought = f"{at}:{''.join(stack)}"
        if len(stack) >= 3 and stack[-2] == "*" and stack[-1] not in SYMBOLS:
            a, b = int(stack[-3]), int(stack[-1])
            stack[-3:] = [str(a * b)]
            step(thought, _calc(f"{a}*{b}", a * b))
        elif len(stack) >= 4 and stack[-1] in ("+", "-", ")") and stack[-3] in ("+", "-"):
            a, op, b = int(stack[-4]), stack[-3], int(stack[-2])
            value = a + b if op == "+" else a - b
            stack[-4:-1] = [str(value)]
            step(thought, _calc(f"{a}{op}{b}", value))
        elif len(stack) == 2 and stack[-1] == ")":
            return steps, int(stack[0]), at
        else:
            pos = at
            token = tokens[pos] if pos < len(tokens) else END
            if token == "(":
                inner, value, at = _level(tokens, pos + 1)
                stack.append(str(value))
                step(thought, _lookup(pos, token), inner)
            else:
                at = pos + 1
                stack.append(token)
                step(thought, _lookup(pos, token))


def gold_document(expression: str) -> dict:
    """The gold Thread-2 document: the top-level steps read the expression's top level."""
    steps, value, _ = _level(tape(expression), 0)
    return {"reasoning": steps, "answer": str(value)}


# Generation ---------------------------------------------------------------------------------


def _literal(rng: random.Random) -> str:
    digits = rng.choice((1, 2, 2, 3, 3))
    return str(rng.randrange(10 ** (digits - 1) if digits > 1 else 0, 10**digits))


def _render(rng: random.Random, num_ops: int, style: dict) -> tuple[str, str, int]:
    """(text, top operator or '', value) of a random expression with `num_ops` operations."""
    if num_ops == 0:
        text = _literal(rng)
        return text, "", int(text)
    left_ops = _split(rng, num_ops - 1, style["skew"])
    lt, lop, lv = _render(rng, left_ops, style)
    rt, rop, rv = _render(rng, num_ops - 1 - left_ops, style)
    op = rng.choice("+-*")
    if op == "*" and abs(lv * rv) > 10**6:
        op = rng.choice("+-")
    if (op == "*" and lop in "+-" and lop) or rng.random() < style["extra"]:
        lt = f"({lt})"
    if (rop in "+-" and rop and op in "-*+") or rng.random() < style["extra"]:
        rt = f"({rt})"
    value = {"+": lv + rv, "-": lv - rv, "*": lv * rv}[op]
    sp = " " if rng.random() < style["spaces"] else ""
    return f"{lt}{sp}{op}{sp}{rt}", op, value


def _split(rng: random.Random, n: int, skew: float) -> int:
    """Operations that go to the left operand: uniform, or skewed to one side."""
    if rng.random() < skew:
        return rng.choice((0, n))
    return rng.randint(0, n)


def random_expression(rng: random.Random, num_ops: int) -> str:
    style = {
        "skew": rng.choice((0.0, 0.0, 0.2, 0.5)),
        "extra": rng.choice((0.0, 0.0, 0.1, 0.3)),
        "spaces": rng.choice((0.0, 0.0, 0.0, 0.5, 1.0)),
    }
    text, _, _ = _render(rng, num_ops, style)
    if rng.random() < 0.15:
        text = f"({text})"
    return text


def make(size: int, seed: int) -> Instance:
    """An expression with `size` operations."""
    rng = random.Random(f"arith-{size}-{seed}")
    text = random_expression(rng, size)
    doc = gold_document(text)
    return Instance("arith", size, text, doc["answer"], tape_table(text), doc)


def solve_gold(text: str) -> Instance:
    """The gold instance for a user's expression."""
    s, root = parse(text)
    num_ops = s.count("+") + s.count("-") + s.count("*")
    doc = gold_document(text)
    return Instance("arith", num_ops, text, doc["answer"], tape_table(text), doc)
