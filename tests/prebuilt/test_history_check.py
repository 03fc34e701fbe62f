"""The agent's check that every tool call has its answer, which remembers the last history it passed."""

from __future__ import annotations

import pytest

from graphrt.messages import HumanMessage, ToolMessage
from graphrt.prebuilt._agent import HistoryCheck
from tests.prebuilt._fake import ai

UNANSWERED = "do not have a corresponding ToolMessage"


def test_a_grown_history_is_checked_for_its_new_calls() -> None:
    check = HistoryCheck()
    history = [HumanMessage("q"), ai("", ("add", {}, "1")), ToolMessage("2", tool_call_id="1")]
    check(history)
    check([*history, ai("", ("add", {}, "2")), ToolMessage("3", tool_call_id="2")])
    with pytest.raises(ValueError, match=UNANSWERED) as raised:
        check([*history, ai("", ("add", {}, "3"))])
    assert "'id': '3'" in str(raised.value)


def test_an_answer_in_the_remembered_part_still_counts() -> None:
    check = HistoryCheck()
    history = [HumanMessage("q"), ToolMessage("early", tool_call_id="7")]
    check(history)
    check([*history, ai("", ("add", {}, "7"))])


def test_a_history_that_differs_from_the_remembered_one_is_checked_whole() -> None:
    check = HistoryCheck()
    answer = ToolMessage("2", tool_call_id="1")
    check([HumanMessage("q"), ai("", ("add", {}, "1")), answer])
    # Same length and the same answer object, but the call before it is a different one now.
    with pytest.raises(ValueError, match=UNANSWERED):
        check([HumanMessage("q"), ai("", ("add", {}, "9")), answer])


def test_a_failed_history_is_not_remembered() -> None:
    check = HistoryCheck()
    bad = [HumanMessage("q"), ai("", ("add", {}, "1"))]
    with pytest.raises(ValueError, match=UNANSWERED):
        check(bad)
    with pytest.raises(ValueError, match=UNANSWERED):
        check([*bad, HumanMessage("more")])


def test_answers_of_another_history_do_not_count() -> None:
    check = HistoryCheck()
    check([HumanMessage("q"), ai("", ("add", {}, "1")), ToolMessage("2", tool_call_id="1")])
    with pytest.raises(ValueError, match=UNANSWERED):
        check([HumanMessage("other thread"), ai("", ("add", {}, "1"))])
