"""Helpers shared by the test files (one copy of each)."""

import os
import select


def check_clean(rc, out, err, expected_rc=0):
    """A child process ended as expected: no fatal error, no crash, no
    faulthandler watchdog report, and the expected exit code."""
    report = f'rc={rc}\n--- stdout ---\n{out}\n--- stderr ---\n{err}'
    assert 'Fatal Python error' not in err, report
    assert 'Segmentation fault' not in err, report
    assert 'Timeout (' not in err, report     # faulthandler watchdog
    assert rc == expected_rc, report


def read_with_timeout(fd, n=1, timeout=30):
    """os.read(fd, n), failing the test if nothing comes within timeout
    seconds (instead of hanging the suite)."""
    ready, _, _ = select.select([fd], [], [], timeout)
    assert ready, f'nothing to read on fd {fd} after {timeout} s'
    return os.read(fd, n)
