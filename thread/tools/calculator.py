"""The built-in `calculator` tool: exact arithmetic on integers and decimals.

An expression is parsed by a small LALR grammar and evaluated by walking its tree bottom-up
with exact `Fraction`s; it is never evaluated as Python code. Limits on length, nesting,
operand and result size refuse hostile input before any large computation is started.
"""

from __future__ import annotations

import decimal
import functools
from dataclasses import dataclass
from fractions import Fraction

import lark

from thread.tools.registry import Tool, ToolError

# `**` binds tighter than a unary minus on its left and takes one on its right (-2**2 = -4,
# 2**-1 = 0.5), and is right-associative, as in Python and in ordinary notation.
GRAMMAR = r"""
?sum: product
    | sum "+" product -> add
    | sum "-" product -> sub
?product: unary
    | product "*" unary -> mul
    | product "/" unary -> div
    | product "//" unary -> floordiv
    | product "%" unary -> mod
?unary: power
    | "-" unary -> neg
    | "+" unary -> pos
?power: atom
    | atom "**" unary -> pow
?atom: NUMBER -> number
    | "(" sum ")"
NUMBER: /[0-9]+(\.[0-9]*)?|\.[0-9]+/
%ignore /[ \t\r\n]+/
"""

DESCRIPTION = (
    "Exact arithmetic on integers and decimals: + - * / // % ** and parentheses. "
    "Integer results are returned as numbers, others as exact decimal strings."
)

PARAMETERS = {
    "type": "object",
    "properties": {
        "expression": {"type": "string", "description": "for example (17 + 25) * 3 / 4"},
    },
    "required": ["expression"],
    "additionalProperties": False,
}


class CalculatorError(ToolError):
    """An expression the calculator refuses: bad syntax, a limit, division by zero."""


@dataclass(frozen=True)
class CalculatorLimits:
    """What the calculator refuses. `precision` is the number of significant digits of a
    quotient that has no exact decimal form (1/3), the only inexact result."""

    max_chars: int = 2000
    max_depth: int = 100
    max_digits: int = 1000
    precision: int = 28

    def __post_init__(self) -> None:
        for name in ("max_chars", "max_depth", "max_digits", "precision"):
            if not 1 <= getattr(self, name) <= 4000:
                raise ValueError(
                    f"CalculatorLimits.{name} must be in 1..4000, got {getattr(self, name)}"
                )


def calculator_tool(limits: CalculatorLimits = CalculatorLimits()) -> Tool:
    """The `calculator` tool: parameters `{"expression": string}`."""

    def calculator(expression: str) -> int | str:
        return calculate(expression, limits)

    return Tool("calculator", DESCRIPTION, PARAMETERS, calculator)


def calculate(expression: str, limits: CalculatorLimits = CalculatorLimits()) -> int | str:
    """Evaluate `expression`; an int for an integer result, else a decimal string."""
    return render(evaluate(expression, limits), limits)


def evaluate(expression: str, limits: CalculatorLimits = CalculatorLimits()) -> Fraction:
    """Evaluate `expression` exactly; raise CalculatorError on anything it refuses."""
    _check_shape(expression, limits)
    try:
        tree = _parser().parse(expression)
    except lark.exceptions.UnexpectedInput as e:
        raise CalculatorError(_syntax_message(e, expression)) from None

    values: dict[int, Fraction] = {}
    for node in tree.iter_subtrees():  # children always come before their parent
        args = [values[id(c)] for c in node.children if isinstance(c, lark.Tree)]
        source = expression[node.meta.start_pos : node.meta.end_pos]
        if node.data == "number":
            value = _number(str(node.children[0]), limits)
        else:
            value = _apply(node.data, args, source, limits)
        _check_size(value, source, limits)
        values[id(node)] = value
    return values[id(tree)]


def render(value: Fraction, limits: CalculatorLimits = CalculatorLimits()) -> int | str:
    """An int if whole, else the exact decimal string, else `precision` significant digits."""
    if value.denominator == 1:
        return value.numerator
    exact = _exact_decimal(value, limits.max_digits)
    if exact is not None:
        return exact
    with decimal.localcontext(prec=limits.precision, rounding=decimal.ROUND_HALF_EVEN):
        quotient = decimal.Decimal(value.numerator) / decimal.Decimal(value.denominator)
    if -20 <= quotient.adjusted() < limits.precision:
        return format(quotient, "f")
    return str(quotient)


def _exact_decimal(value: Fraction, max_digits: int) -> str | None:
    """`value` as a plain decimal string if its expansion ends within `max_digits` places."""
    den = value.denominator
    twos = (den & -den).bit_length() - 1
    den >>= twos
    fives = 0
    while den % 5 == 0:
        den //= 5
        fives += 1
    scale = max(twos, fives)
    if den != 1 or scale > max_digits:
        return None
    digits = str(abs(value.numerator) * 10**scale // value.denominator).rjust(scale + 1, "0")
    sign = "-" if value < 0 else ""
    return f"{sign}{digits[:-scale]}.{digits[-scale:]}"


def _apply(op: str, args: list[Fraction], source: str, limits: CalculatorLimits) -> Fraction:
    if op == "neg":
        return -args[0]
    if op == "pos":
        return args[0]
    a, b = args
    if op in ("div", "floordiv", "mod") and b == 0:
        raise CalculatorError(f"division by zero in {_quote(source)}")
    if op == "pow":
        return _power(a, b, source, limits)
    return {
        "add": lambda: a + b,
        "sub": lambda: a - b,
        "mul": lambda: a * b,
        "div": lambda: a / b,
        "floordiv": lambda: Fraction(a // b),
        "mod": lambda: a % b,
    }[op]()


def _power(base: Fraction, exponent: Fraction, source: str, limits: CalculatorLimits) -> Fraction:
    """`base ** exponent`, refused before computing when the result is surely too large."""
    if exponent.denominator != 1:
        raise CalculatorError(f"the exponent must be an integer in {_quote(source)}")
    if base == 0 and exponent < 0:
        raise CalculatorError(f"division by zero in {_quote(source)}")
    if base in (0, 1, -1):
        return base ** int(exponent)

    # |base| >= 2 ** (bits - 1) for its numerator or denominator, so this is a lower bound.
    bits = max(abs(base.numerator).bit_length(), base.denominator.bit_length())
    min_digits = (bits - 1) * abs(exponent.numerator) * 30103 // 100000
    if min_digits > limits.max_digits:
        raise CalculatorError(
            f"{_quote(source)} would have at least {min_digits} digits; "
            f"the limit is {limits.max_digits}"
        )
    return base ** int(exponent)


def _number(text: str, limits: CalculatorLimits) -> Fraction:
    num_digits = sum(ch.isdigit() for ch in text)
    if num_digits > limits.max_digits:
        raise CalculatorError(f"a number has {num_digits} digits; the limit is {limits.max_digits}")
    return Fraction(text + "0" if text.endswith(".") else text)


def _check_size(value: Fraction, source: str, limits: CalculatorLimits) -> None:
    bound = _power_of_ten(limits.max_digits)
    if abs(value.numerator) >= bound or value.denominator >= bound:
        raise CalculatorError(
            f"the value of {_quote(source)} has more than {limits.max_digits} digits"
        )


def _check_shape(expression: str, limits: CalculatorLimits) -> None:
    if len(expression) > limits.max_chars:
        raise CalculatorError(
            f"the expression has {len(expression)} characters; the limit is {limits.max_chars}"
        )
    depth = max_depth = 0
    for ch in expression:
        depth += (ch == "(") - (ch == ")")
        max_depth = max(max_depth, depth)
    if max_depth > limits.max_depth:
        raise CalculatorError(
            f"parentheses are nested {max_depth} deep; the limit is {limits.max_depth}"
        )


def _syntax_message(e: lark.exceptions.UnexpectedInput, expression: str) -> str:
    if isinstance(e, lark.exceptions.UnexpectedCharacters):
        ch = expression[e.pos_in_stream]
        message = f"unexpected character {ch!r} at column {e.column}"
        expected = e.allowed
        if ch in "eE" and e.pos_in_stream > 0 and expression[e.pos_in_stream - 1].isdigit():
            message += " (exponent notation is not supported: write the digits out)"
    elif isinstance(e, lark.exceptions.UnexpectedToken) and e.token.type != "$END":
        message = f"unexpected {e.token.value!r} at column {e.column}"
        expected = e.expected
    else:
        message = "the expression ends too early"
        expected = getattr(e, "expected", None)
    names = _terminal_names()
    shown = sorted({names.get(t, t) for t in expected or () if t != "$END"})
    return f"syntax error: {message}; expected {' or '.join(shown)}" if shown else message


def _quote(source: str) -> str:
    source = " ".join(source.split())
    return f"`{source}`" if len(source) <= 60 else f"`{source[:57]}...`"


@functools.cache
def _parser() -> lark.Lark:
    return lark.Lark(GRAMMAR, start="sum", parser="lalr", propagate_positions=True)


@functools.cache
def _terminal_names() -> dict[str, str]:
    names = {"NUMBER": "a number"}
    for t in _parser().terminals:
        if isinstance(t.pattern, lark.lexer.PatternStr):
            names[t.name] = repr(t.pattern.value)
    return names


@functools.cache
def _power_of_ten(n: int) -> int:
    return 10**n
