"""Progress of `make reports`: a per-cell bar on a terminal, nothing per cell in a log; kernel chatter in its log."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
from test_pipeline import _params, _probe_notebook

from crm_analytics.pipeline import PROGRESS_ENV, configure, main

pytestmark = pytest.mark.slow


@pytest.fixture
def probe(project):
    _probe_notebook(project)
    _params(project, value=1)
    configure("probe")
    return project


def test_forced_progress_shows_cells_on_stderr_not_in_the_kernel_log(probe, capfd, monkeypatch):
    monkeypatch.setenv(PROGRESS_ENV, "always")
    assert main(["run", "probe", "02_probe"]) == 0
    out, err = capfd.readouterr()
    assert "02_probe" in err and "cell/s" in err and re.search(r"\b(\d+)/\1 \[", err), err  # e.g. 5/5 cells
    assert out.startswith("published reports/probe/02_probe.html (")
    log = (probe / "build" / "probe" / "logs" / "02_probe.kernel.log").read_text(errors="replace")
    assert "cell/s" not in log and "02_probe:" not in log


def test_without_a_terminal_nothing_is_printed_per_cell(probe, capfd, monkeypatch):
    monkeypatch.delenv(PROGRESS_ENV, raising=False)
    assert not os.isatty(2)  # pytest captures it
    assert main(["run", "probe", "02_probe"]) == 0
    out, err = capfd.readouterr()
    assert err == ""
    assert out.splitlines() and len(out.splitlines()) == 1 and out.startswith("published ")


def test_on_a_terminal_the_bar_is_drawn_there(probe):
    """The real thing: stderr is a pseudo-terminal, as in `make reports` typed at a prompt."""
    import pty
    import select

    env = {k: v for k, v in os.environ.items() if k != PROGRESS_ENV}
    leader, follower = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "crm_analytics.pipeline", "run", "probe", "02_probe"],
                            env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=follower)
    os.close(follower)
    seen = b""
    try:
        while True:
            ready, _, _ = select.select([leader], [], [], 120)
            if not ready:
                break
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # the terminal closed: the process is done
                break
            if not chunk:
                break
            seen += chunk
        assert proc.wait(timeout=120) == 0
    finally:
        os.close(leader)
        if proc.poll() is None:
            proc.kill()
    text = seen.decode(errors="replace")
    assert "02_probe" in text and "cell/s" in text and re.search(r"\b(\d+)/\1 \[", text), text
    assert proc.stdout.read().decode().startswith("published reports/probe/02_probe.html (")
