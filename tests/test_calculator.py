"""The calculator: exact values, the rendering of results, and hostile input refused fast."""

from __future__ import annotations

import decimal
import time
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from thread.tools import CalculatorError, CalculatorLimits, builtin_tools, calculate
from thread.tools.calculator import evaluate

VALID = [
    ("1 + 2 * 3", 7),
    ("(1 + 2) * 3", 9),
    ("((17+25)*3)-(48-19)", 97),
    ("10 - 4 - 3", 3),  # left-associative
    ("2 ** 3 ** 2", 512),  # right-associative
    ("-2 ** 2", -4),  # ** binds tighter than a leading minus
    ("2 ** -1", "0.5"),
    ("(-2) ** 3", -8),
    ("--3", 3),
    ("+4", 4),
    ("7 // 2", 3),
    ("-7 // 2", -4),  # floor division
    ("-7 % 2", 1),  # the remainder takes the divisor's sign
    ("7.5 % 2", "1.5"),
    ("6 / 3", 2),  # an integer-valued quotient is an integer
    ("2.50 * 2", 5),
    ("0.1 + 0.2", "0.3"),  # exact, not binary floating point
    ("1 / 8", "0.125"),
    ("-1 / 8", "-0.125"),
    ("123456789 / 1000", "123456.789"),
    ("1.", 1),
    (".5 * 4", 2),
    ("1 - 1", 0),
    ("1 / 3", "0.3333333333333333333333333333"),  # 28 significant digits
    ("2 / 3", "0.6666666666666666666666666667"),  # rounded half-even
    ("(1 / 3) * 3", 1),  # exact until the result is rendered
    ("10 ** 40 / 3", "3.333333333333333333333333333E+39"),
    ("1 / (3 * 10 ** 30)", "3.333333333333333333333333333E-31"),
    ("99999999999999999999 * 99999999999999999999", 9999999999999999999800000000000000000001),
    ("1 ** 99999999", 1),
    ("(-1) ** 99999999", -1),
    ("0 ** 0", 1),
    (" 1\n+\t2 ", 3),
]

HOSTILE = [
    ("__import__('os').system('true')", "unexpected character '_' at column 1"),
    ("1e999999", "exponent notation is not supported"),
    ("2**99999999", "`2**99999999` would have at least 30102999 digits; the limit is 1000"),
    ("9**9**9", "would have at least"),
    ("0.5 ** 100000", "would have at least"),
    ("3 ** 3000", "the value of `3 ** 3000` has more than 1000 digits"),
    ("(" * 10_000 + "1" + ")" * 10_000, "the expression has 20001 characters; the limit is 2000"),
    ("(" * 150 + "1" + ")" * 150, "parentheses are nested 150 deep; the limit is 100"),
    ("1" * 10_000, "the expression has 10000 characters"),
    ("1" * 1500, "a number has 1500 digits; the limit is 1000"),
    ("1 / 0", "division by zero in `1 / 0`"),
    ("1 // (2 - 2)", "division by zero in `1 // (2 - 2)`"),
    ("5 % 0", "division by zero"),
    ("0 ** -1", "division by zero"),
    ("2 ** 0.5", "the exponent must be an integer"),
    ("1 +", "the expression ends too early; expected '(' or '+' or '-' or a number"),
    ("1 2", "unexpected '2' at column 3"),
    ("2 ^ 3", "unexpected character '^' at column 3"),
    ("((1)", "ends too early"),
    ("", "ends too early"),
    ("abs(-1)", "unexpected character 'a'"),
    ("1_000", "unexpected character '_'"),
]


@pytest.mark.parametrize("expression, expected", VALID)
def test_valid_expression_gives_exact_value(expression: str, expected: int | str) -> None:
    result = calculate(expression)
    assert result == expected
    assert type(result) is type(expected)


@pytest.mark.parametrize("expression, message", HOSTILE)
def test_hostile_expression_is_refused_quickly(expression: str, message: str) -> None:
    start = time.perf_counter()
    with pytest.raises(CalculatorError) as e:
        calculate(expression)
    assert message in str(e.value)
    assert time.perf_counter() - start < 2.0, "refusal must come before any large computation"


@pytest.mark.parametrize("expression, message", HOSTILE[:6])
def test_hostile_expression_becomes_error_result_through_registry(
    expression: str, message: str
) -> None:
    outcome = builtin_tools().call("calculator", {"expression": expression})
    assert outcome.result == {"error": outcome.error}
    assert message in outcome.error


def test_integer_result_is_json_integer_and_decimal_is_string() -> None:
    registry = builtin_tools()
    assert registry.call("calculator", {"expression": "6*7"}).text == "42"
    assert registry.call("calculator", {"expression": "1/4"}).text == '"0.25"'


def test_long_unary_chain_evaluates_without_recursion() -> None:
    assert calculate("-" * 1999 + "1") == -1


def test_evaluate_keeps_fractions_exact() -> None:
    assert evaluate("1/3 + 1/6") == Fraction(1, 2)


def test_limits_are_configurable() -> None:
    limits = CalculatorLimits(max_digits=5, precision=4)
    assert calculate("99999 + 0", limits) == 99999
    with pytest.raises(CalculatorError, match="more than 5 digits"):
        calculate("99999 + 1", limits)
    assert calculate("2 / 3", limits) == "0.6667"


def test_terminating_decimal_too_long_is_rounded() -> None:
    # 1 / 2**1200 ends after 1200 places, past max_digits, so it is rounded to 28 digits.
    result = calculate("1 / 2 ** 1200")
    mantissa, _ = result.split("E")
    assert len(mantissa.replace(".", "")) == 28
    with decimal.localcontext(prec=60):
        assert abs(decimal.Decimal(result) * 2**1200 - 1) < decimal.Decimal("1e-27")


@pytest.mark.parametrize("field", ["max_chars", "max_depth", "max_digits", "precision"])
def test_limits_are_validated(field: str) -> None:
    with pytest.raises(ValueError, match=f"CalculatorLimits.{field} must be in 1..4000, got 0"):
        CalculatorLimits(**{field: 0})


# Precedence and associativity against Python's own integer arithmetic, which the calculator
# matches for + - * // % and ** (it differs only for /, which Python makes a float).
_atoms = st.integers(0, 30).map(str)


def _combine(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    binary = st.tuples(children, st.sampled_from(["+", "-", "*", "//", "%"]), children)
    return st.one_of(
        binary.map(" ".join),
        children.map(lambda e: f"-{e}"),
        children.map(lambda e: f"({e})"),
        st.tuples(_atoms, st.integers(0, 3)).map(lambda p: f"{p[0]} ** {p[1]}"),
    )


@settings(max_examples=300, deadline=None)
@given(st.recursive(_atoms, _combine, max_leaves=12))
def test_integer_expressions_match_python_arithmetic(expression: str) -> None:
    try:
        expected = eval(expression, {"__builtins__": {}})  # the reference, on generated input
    except ZeroDivisionError:
        with pytest.raises(CalculatorError, match="division by zero"):
            calculate(expression)
        return
    assert calculate(expression) == expected
