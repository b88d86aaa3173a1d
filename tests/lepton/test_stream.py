"""Splitting a replica log into the status stream and the plain log."""

from __future__ import annotations

from jobyard.backends.lepton.stream import exit_code, exit_line, split_log, status_line

LOG = (
    b"starting\n"
    + status_line(b'{"seq": 1}')
    + b"epoch 1/2\n"
    + status_line(b'{"seq": 2}\n')
    + exit_line(75)
)


def test_status_lines_lose_their_marker_and_the_rest_is_the_log():
    status, log = split_log(LOG, complete=True)
    assert status == b'{"seq": 1}\n{"seq": 2}\n'
    assert log == b"starting\nepoch 1/2\n"


def test_a_half_written_last_line_waits_until_the_log_is_complete():
    raw = LOG[: LOG.index(b"epoch") + 5]
    assert split_log(raw, complete=False) == (b'{"seq": 1}\n', b"starting\n")
    assert split_log(raw, complete=True)[1] == b"starting\nepoch"


def test_a_prefix_splits_into_prefixes_so_offsets_stay_valid():
    full_status, full_log = split_log(LOG, complete=True)
    for cut in range(len(LOG) + 1):
        status, log = split_log(LOG[:cut], complete=False)
        assert full_status.startswith(status) and full_log.startswith(log)


def test_exit_code_is_the_last_reported_one():
    assert exit_code(LOG) == 75
    assert exit_code(b"no marker\n") is None
    assert exit_code(exit_line(1) + exit_line(0)) == 0
    assert exit_code(b"@@jobyard:exit@@ nonsense\n") is None
