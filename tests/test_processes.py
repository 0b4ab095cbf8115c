"""Worker pools and signals held back."""

from __future__ import annotations

import os
import signal

import pytest

from kdq_lab.processes import map_in_processes, signals_deferred


@pytest.mark.slow  # starts another Python process
def test_results_come_in_submission_order_through_on_result():
    seen = []
    results = map_in_processes(pow, [(2, 3), (3, 2), (10, 0)], workers=2, on_result=lambda i, r: seen.append(i) or -r)
    assert results == [-8, -9, -1] and seen == [0, 1, 2]
    assert map_in_processes(pow, [], workers=2) == []


@pytest.mark.slow  # starts another Python process
def test_a_worker_error_reaches_the_caller():
    with pytest.raises(ZeroDivisionError):
        map_in_processes(divmod, [(1, 1), (1, 0)], workers=2)


def test_ctrl_c_waits_until_the_block_is_done():
    finished, before = [], signal.getsignal(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt), signals_deferred():
        os.kill(os.getpid(), signal.SIGINT)
        finished.append("both steps")
    assert finished == ["both steps"]
    assert signal.getsignal(signal.SIGINT) is before, "the handler is restored"
