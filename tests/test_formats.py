"""Format declarations: loading by name or path, and errors that name the file, key and value."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from thread.assets import asset_dir
from thread.formats import FormatDeclarationError, ThreadFormatError, load_format
from thread.parser import parse


def test_thread2_loads_by_name_and_by_path():
    fmt = load_format("thread2")
    assert fmt is load_format(asset_dir("grammars") / "thread2.toml")
    assert fmt.nodes == {"task": "task"} and fmt.separator == "COMMA" and fmt.start == "start"
    assert fmt.tool.parameters == "parameters" and fmt.answer == "answer"
    assert fmt.tool.render_result('{"x": 1}') == ', "tool_result": {"x": 1}'


def test_pencil_declares_a_reduction_and_no_separator():
    fmt = load_format("pencil")
    assert fmt.reduce.node == "call" and fmt.reduce.keep == "answer" and fmt.separator is None


def test_unknown_format_name_lists_known_ones():
    with pytest.raises(FormatDeclarationError, match="thread2"):
        load_format("nosuch")


def declaration(tmp_path: Path, edit: tuple[str, str]) -> Path:
    shutil.copy(asset_dir("grammars") / "thread2.lark", tmp_path / "thread2.lark")
    text = (asset_dir("grammars") / "thread2.toml").read_text()
    assert edit[0] in text
    path = tmp_path / "custom.toml"
    path.write_text(text.replace(*edit, 1))
    return path


BAD = [
    (('decode = "json" }', 'decode = "yaml" }'), "decode = 'yaml': allowed: json, text, children"),
    (('task = "task"', 'tusk = "task"'), "nodes.tusk = 'tusk': no rule 'tusk'"),
    (('separator = "COMMA"', 'separator = "SEMI"'), "format.separator = 'SEMI': must be a terminal"),
    (('parameters = "parameters"', 'parameters = "params"'), "tool.parameters = 'params': must be a declared field name"),
    (('grammar = "thread2.lark"', 'grammar = "missing.lark"'), "format.grammar = 'missing.lark': no such file"),
    (("[answer]", "[answers]"), "[answers]"),
    (('result_template = ', 'result_template = "x" #'), "tool.result_template = 'x': must contain {result}"),
    (('name = "thread2"', 'name = 2'), "format.name = 2: a non-empty string is required"),
    (("[format]", "[format"), "not valid TOML"),
]


@pytest.mark.parametrize("edit, message", BAD, ids=[b[1][:30] for b in BAD])
def test_bad_declarations_name_the_key_and_value(tmp_path, edit, message):
    path = declaration(tmp_path, edit)
    with pytest.raises(FormatDeclarationError) as info:
        load_format(path)
    assert message in str(info.value)
    assert str(path) in str(info.value)
    assert isinstance(info.value, ThreadFormatError) and isinstance(info.value, ValueError)


def test_a_grammar_that_is_not_lalr1_is_refused(tmp_path):
    (tmp_path / "amb.lark").write_text('start: a | b\na: X\nb: X\nX: "x"\n')
    (tmp_path / "amb.toml").write_text(
        '[format]\nname = "amb"\ngrammar = "amb.lark"\nstart = "start"\ndocument = "doc"\n'
        '[nodes]\na = "a"\n[fields]\n'
    )
    with pytest.raises(FormatDeclarationError, match="amb.lark"):
        load_format(tmp_path / "amb.toml").tables


def test_a_declaration_by_path_drives_the_parser(tmp_path):
    path = declaration(tmp_path, ('thought_field = { name = "thought"', 'thought_field = { name = "idea"'))
    parser = parse('{"reasoning": [{"thought": "x"}], "answer": "a"}', load_format(path))
    assert parser.tree.to_json() == {"reasoning": [{"idea": "x"}], "answer": "a"}
