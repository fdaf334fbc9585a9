"""pipeline_common.leftovers: a temporary name names the process that wrote it, so a later run can tidy a dead
owner's files and never a live one's. Class: the identity of the writing process, whichever way it was started
(a fresh interpreter, or forked from a process that had already made names of its own)."""

from __future__ import annotations

import multiprocessing
import os

import pytest

from pipeline_common.leftovers import owner_alive, temp_name


def _name_in_child(queue) -> None:
    queue.put((os.getpid(), temp_name("orders", ".parquet")))


@pytest.mark.skipif(os.name == "nt", reason="Windows has no fork; a spawned child starts with nothing cached")
def test_a_forked_child_names_itself_not_its_parent():
    parent_name = temp_name("orders", ".parquet")  # the parent's identity is known (and cached) before the fork
    assert owner_alive(parent_name)
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_name_in_child, args=(queue,))
    child.start()
    child_pid, child_name = queue.get(timeout=60)
    child.join(timeout=60)
    assert f".{child_pid}-" in child_name and f".{os.getpid()}-" not in child_name, child_name
    assert not owner_alive(child_name), "the child has exited: its leftovers are a dead owner's, to be tidied"
    assert owner_alive(parent_name)
