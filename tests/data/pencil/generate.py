"""Write call/return traces in the style of PENCIL's published data generator (SAT and QBF).

PENCIL's generators (Yang et al., ICML 2025) run a recursive solver and log each call as
`[CALL] Question: ... <steps> [SEP] Answer: <result> [RETURN]`, words joined by single spaces,
after the problem and `<|endofprompt|>`; lines are `{"text", "label", "size"}` JSON. This script
writes our own solvers' traces in that shape, so the tests replay realistic nesting and lengths.

    .venv/bin/python tests/data/pencil/generate.py   # rewrites sat.jsonl and qbf.jsonl here
"""

from __future__ import annotations

import json
import random
from pathlib import Path

HERE = Path(__file__).parent
END_OF_PROMPT = "<|endofprompt|>"


def literal(lit: int) -> str:
    return f"¬ {abs(lit)}" if lit < 0 else str(lit)


def clause_text(clause: list[int]) -> str:
    return "( " + " ∨ ".join(literal(x) for x in clause) + " )"


def cnf_text(clauses: list[list[int]]) -> str:
    return " ∧ ".join(clause_text(c) for c in clauses)


# 1) SAT: DPLL with unit propagation, one call per simplified formula


class SatTracer:
    def __init__(self) -> None:
        self.steps: list[str] = []

    def call(self, clauses: list[list[int]]) -> bool:
        self.steps += ["[CALL]", f"Question: {cnf_text(clauses)}"]
        result = self.dpll(clauses)
        self.steps += ["[SEP]", f"Answer: {result}", "[RETURN]"]
        return result

    def dpll(self, clauses: list[list[int]]) -> bool:
        unit = next((c[0] for c in clauses if len(c) == 1), None)
        if unit is not None:
            self.steps.append(f"Found {literal(unit)} Let {abs(unit)} = {unit > 0}")
            return self.branch(clauses, abs(unit), unit > 0)
        var = min(abs(x) for c in clauses for x in c)
        for value in (True, False):
            self.steps.append(f"Try {var} = {value}")
            if self.branch(clauses, var, value):
                return True
        return False

    def branch(self, clauses: list[list[int]], var: int, value: bool) -> bool:
        true_lit = var if value else -var
        rest = [[x for x in c if x != -true_lit] for c in clauses if true_lit not in c]
        if not rest:
            return True
        if any(not c for c in rest):
            return False
        return self.call(rest)


def sat_sample(rng: random.Random, num_vars: int, num_clauses: int) -> dict:
    clauses = [
        [v if rng.random() < 0.5 else -v for v in rng.sample(range(1, num_vars + 1), 3)]
        for _ in range(num_clauses)
    ]
    tracer = SatTracer()
    label = tracer.call(clauses)
    text = f"{cnf_text(clauses)} {END_OF_PROMPT} " + " ".join(tracer.steps)
    return {"text": text, "label": label, "size": num_vars}


# 2) QBF: one call per quantifier prefix position, clauses checked at the leaves


class QbfTracer:
    def __init__(self, prefix: list[tuple[str, int]], clauses: list[list[int]]) -> None:
        self.prefix, self.clauses = prefix, clauses
        self.steps: list[str] = []

    def call(self, depth: int, assignment: dict[int, bool]) -> bool:
        if depth < len(self.prefix):
            question = "prefix_from {} {}".format(*self.prefix[depth])
        else:
            question = "evaluate " + " ".join(f"{v} = {b}" for v, b in sorted(assignment.items()))
        self.steps += ["[CALL]", f"Question: {question}"]
        result = self.solve(depth, assignment)
        self.steps += ["[SEP]", f"Answer: {result}", "[RETURN]"]
        return result

    def solve(self, depth: int, assignment: dict[int, bool]) -> bool:
        if depth == len(self.prefix):
            return self.evaluate(assignment)
        quantifier, var = self.prefix[depth]
        for value in (False, True):
            self.steps.append(f"Try {var} = {value}")
            holds = self.call(depth + 1, {**assignment, var: value})
            if holds == (quantifier == "∃"):
                return holds
        return quantifier == "∀"

    def evaluate(self, assignment: dict[int, bool]) -> bool:
        for i, clause in enumerate(self.clauses):
            self.steps.append(f"Check #{i + 1} {clause_text(clause)}")
            if not any(assignment[abs(x)] == (x > 0) for x in clause):
                self.steps.append("False")
                return False
            self.steps.append("True")
        self.steps.append("Formula = True")
        return True


def qbf_sample(rng: random.Random, num_vars: int, num_clauses: int) -> dict:
    prefix = [(rng.choice("∃∀"), v) for v in range(1, num_vars + 1)]
    clauses = [
        [v if rng.random() < 0.5 else -v for v in rng.sample(range(1, num_vars + 1), rng.randint(2, 3))]
        for _ in range(num_clauses)
    ]
    tracer = QbfTracer(prefix, clauses)
    label = tracer.call(0, {})
    head = " ".join(f"{q} {v}" for q, v in prefix)
    body = " ".join(f"#{i + 1} {clause_text(c)}" for i, c in enumerate(clauses))
    text = f"{head} : {body} {END_OF_PROMPT} " + " ".join(tracer.steps)
    return {"text": text, "label": label, "size": num_vars}


def main() -> None:
    rng = random.Random(8)
    samples = {
        "sat.jsonl": [sat_sample(rng, n, m) for n, m in ((4, 12), (5, 18), (5, 22), (6, 26))],
        "qbf.jsonl": [qbf_sample(rng, n, m) for n, m in ((3, 5), (3, 6), (4, 7), (4, 8))],
    }
    for name, rows in samples.items():
        lines = [json.dumps(row, ensure_ascii=False) for row in rows]
        (HERE / name).write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
