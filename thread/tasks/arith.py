"""Family `arith`: integer expressions with + - * and parentheses, solved as a task tree.

Task text: the expression itself, e.g. `((17+25)*3)-(48-19)`; spaces are allowed. A task's
thought is its expression without spaces and outer parentheses, with the main operator set off
by one space on each side (`(17+25) * 3`). If both operands are literals the task calls
`calculator` itself; otherwise its subtasks evaluate the non-literal operands, left first, and a
last subtask calls `calculator` on `a op b` copied from those conclusions and the thought. The
conclusion is the value; the top-level conclusion is copied into `answer`.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass

from thread.tasks import Instance, TaskTextError

ALLOWED = set("0123456789+-*()")
MAX_NESTING = 100  # the parser and the gold tree recurse once per level


@dataclass
class Node:
    start: int  # operand span in the space-free text, wrapping parentheses included
    end: int
    core_start: int  # span without wrapping parentheses
    core_end: int
    value: int
    op: str | None = None
    op_pos: int = -1
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
        op, pos = self.s[self.i], self.i
        self.i += 1
        right = operand()
        value = {"+": left.value + right.value, "-": left.value - right.value}.get(
            op, left.value * right.value
        )
        return Node(left.start, right.end, left.start, right.end, value, op, pos, left, right)

    def factor(self) -> Node:
        start = self.i
        if self.i < len(self.s) and self.s[self.i] == "(":
            self.i += 1
            node = self.expr()
            if self.i >= len(self.s) or self.s[self.i] != ")":
                raise self.fail("')'")
            self.i += 1
            node.start, node.end = start, self.i
            return node
        while self.i < len(self.s) and self.s[self.i].isdigit():
            self.i += 1
        if self.i == start:
            raise self.fail("a number or '('")
        return Node(start, self.i, start, self.i, int(self.s[start : self.i]))


def parse(expression: str) -> tuple[str, Node]:
    """(space-free text, root node) of an integer expression with + - * and parentheses."""
    s = "".join(expression.split())
    bad = set(s) - ALLOWED
    if not s or bad:
        raise TaskTextError(
            f"expression {expression!r}: only digits, + - * ( ) and spaces are allowed"
            + (f", got {''.join(sorted(bad))!r}" if bad else ", got an empty text")
        )
    nesting = max(itertools.accumulate({"(": 1, ")": -1}.get(c, 0) for c in s))
    if nesting > MAX_NESTING:
        raise TaskTextError(
            f"expression {expression!r}: parentheses nest {nesting} deep, more than {MAX_NESTING}"
        )
    p = _Parser(s, expression)
    root = p.expr()
    if p.i != len(s):
        raise p.fail("an operator or the end")
    return s, root


def _operand(s: str, node: Node) -> str:
    """How an operand appears in the leaf's calculator expression."""
    if node.op is None:
        return s[node.core_start : node.core_end]
    return f"({node.value})" if node.value < 0 else str(node.value)


def _calc(expression: str, value: int) -> dict:
    return {"tool_name": "calculator", "parameters": {"expression": expression}, "tool_result": value}


def task_for(s: str, node: Node) -> dict:
    """The gold task evaluating `node`."""
    if node.op is None:
        literal = s[node.core_start : node.core_end]
        return {"thought": literal, "conclusion": str(node.value)}
    thought = f"{s[node.core_start : node.op_pos]} {node.op} {s[node.op_pos + 1 : node.core_end]}"
    call = _calc(f"{_operand(s, node.left)}{node.op}{_operand(s, node.right)}", node.value)
    children = [task_for(s, c) for c in (node.left, node.right) if c.op is not None]
    if not children:
        return {"thought": thought, "tooluse": call, "conclusion": str(node.value)}
    leaf = {"tooluse": call, "conclusion": str(node.value)}
    return {"thought": thought, "subtasks": children + [leaf], "conclusion": str(node.value)}


def gold_document(expression: str) -> dict:
    s, root = parse(expression)
    return {"reasoning": [task_for(s, root)], "answer": str(root.value)}


def depth(node: Node) -> int:
    """Nesting depth of the task tree (a literal-only task counts 1)."""
    kids = [c for c in (node.left, node.right) if c is not None and c.op is not None]
    return 1 + max((depth(c) for c in kids), default=0)


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
    return Instance("arith", size, text, doc["answer"], None, doc)


def solve_gold(text: str) -> Instance:
    """The gold instance for a user's expression."""
    s, root = parse(text)
    num_ops = s.count("+") + s.count("-") + s.count("*")
    doc = gold_document(text)
    return Instance("arith", num_ops, text, doc["answer"], None, doc)
