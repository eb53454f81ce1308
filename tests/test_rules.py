"""Rule sets are data: shipped files load, bad files are refused naming file, key and allowed values,
and each policy turns parser events into the right character spans."""

from __future__ import annotations

import json

import pytest

from thread.formats import load_format
from thread.parser import Parser
from thread.rules import RuleError, load_rules

FMT = load_format("thread2")


@pytest.mark.parametrize("name", ["none", "collapse", "window", "tim"])
def test_shipped_rule_sets_load(name):
    rules = load_rules(name, FMT)
    assert rules.name == name and rules.description


@pytest.mark.parametrize(
    "body, message",
    [
        ("[[rule]]\npolicy = 'shrink'\n", "rule[0].policy = 'shrink'; allowed: collapse, stack, window"),
        ("[[rule]]\npolicy = 'collapse'\nprune = ['subtasks']\nmode = 'fast'\n", "rule[0].mode = 'fast'; allowed: exact, shift, keep"),
        ("[[rule]]\npolicy = 'window'\nkeep = 0\n", "rule[0].keep = 0; allowed: an integer >= 1"),
        ("[[rule]]\npolicy = 'collapse'\nprune = ['subtask']\n", "rule[0].prune names field 'subtask'; allowed:"),
        ("[[rule]]\npolicy = 'collapse'\nprune = ['subtasks']\nkeep = ['thought']\n", "exactly one of 'prune' or 'keep'"),
        ("[[rule]]\npolicy = 'stack'\nkeep = 2\n", "needs 'field'"),
        ("[[rule]]\npolicy = 'window'\nkeep = 2\nsize = 3\n", "unknown key 'rule[0].size'; allowed: policy, mode, node, keep"),
        ("colour = 'red'\n", "unknown key 'colour'; allowed: description, format, rule"),
        ("format = 'pencil'\n", "format = 'pencil', but it is loaded for format 'thread2'"),
        ("[[rule]\n", "not valid TOML"),
    ],
)
def test_bad_rule_files_name_the_file_the_key_and_the_allowed_values(tmp_path, body, message):
    path = tmp_path / "thread2.bad.toml"
    path.write_text(body)
    with pytest.raises(RuleError) as caught:
        load_rules(path, FMT)
    assert str(path) in str(caught.value) and message in str(caught.value)


def test_unknown_rule_set_lists_the_known_ones():
    with pytest.raises(RuleError, match="no rule set 'tiny' for format 'thread2'; known: collapse, none, tim, window"):
        load_rules("tiny", FMT)


def decisions(rules_name: str, doc: dict) -> list[tuple[str, str, str]]:
    """(rule, node, pruned text) for every decision while `doc` streams in."""
    text = json.dumps(doc)
    parser, rules, out = Parser(FMT), load_rules(rules_name, FMT), []
    for ch in text:
        for event in parser.feed(ch):
            for d in rules.on_event(event, parser.tree):
                out += [(d.rule.split(":")[1], d.node, text[a:b]) for a, b in d.spans]
    return out


def task(name: str, *subtasks: dict) -> dict:
    t = {"thought": name}
    if subtasks:
        t["subtasks"] = list(subtasks)
    return {**t, "conclusion": name.upper()}


def test_collapse_prunes_each_closed_tasks_subtasks_with_the_following_separator():
    doc = {"reasoning": [task("a", task("b", task("c")), task("d"))], "answer": "A"}
    assert decisions("collapse", doc) == [
        ("collapse", "0.0", '"subtasks": [{"thought": "c", "conclusion": "C"}], '),
        ("collapse", "0", '"subtasks": [{"thought": "b", "subtasks": [{"thought": "c", "conclusion": "C"}], '
         '"conclusion": "B"}, {"thought": "d", "conclusion": "D"}], '),
    ]


def test_window_prunes_the_oldest_finished_sibling_beyond_two():
    doc = {"reasoning": [task(x) for x in "pqrs"], "answer": "S"}
    assert decisions("window", doc) == [
        ("window", "0", '{"thought": "p", "conclusion": "P"}, '),
        ("window", "1", '{"thought": "q", "conclusion": "Q"}, '),
    ]


def test_tim_stack_prunes_the_oldest_subtask_list_beyond_two():
    doc = {"reasoning": [task("a", task("b")), task("c", task("d")), task("e", task("f"))], "answer": "E"}
    assert decisions("tim", doc) == [("stack", "0", '"subtasks": [{"thought": "b", "conclusion": "B"}], ')]
