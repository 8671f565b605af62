"""Shared by the check tests: run one check and assert that it printed exactly its one line."""

from tlcourse.checks import check, parse_line


def run(check_id, capsys, **answers):
    result = check(check_id, namespace={}, **answers)
    printed = capsys.readouterr().out
    assert printed == result.line + "\n", "a check prints exactly its one line"
    assert parse_line(printed) == result
    return result
