"""A cut-down run of the README's main command (tools/demo.py)."""

import shutil
import subprocess
import sys

from tests.conftest import REPO
from tools.runs import val_curve


def _demo(*args):
    """``tools/demo.py`` with ``args``; returns its stdout, failing with the
    end of its output when it fails."""
    out = subprocess.run(
        [sys.executable, 'tools/demo.py', *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return out.stdout


def test_demo_end_to_end(tmp_path):
    work_dir = str(tmp_path / 'demo')
    stdout = _demo('--iters', '4', '--teacher-iters', '4', '--evals', '2', '--work-dir', work_dir)
    # Thread counts are the demo's, not the machine's: results depend on them.
    assert stdout.startswith('2 threads for the teacher, 1 for each student run; ')
    assert '[student alone] iter 4/4' in stdout  # progress while it runs
    table = [line for line in stdout.splitlines() if line.startswith('| ')]
    names = [line.split('|')[1].strip() for line in table[1:]]
    assert names == ['teacher', 'student alone', 'token matching, fixed', 'MoKD']
    params = [int(line.split('|')[4].replace(',', '')) for line in table[1:]]
    assert params[0] > params[1] == params[2] == params[3]  # the students are one network
    assert (tmp_path / 'demo' / 'teacher.pth').exists()
    mokd = tmp_path / 'demo' / 'mokd_vidt-w32_vidt-w16_1xb8-300it_shapes'
    for plot in ('pi', 'conflict', 'dominance', 'val'):
        assert (mokd / f'mokd_{plot}.png').read_bytes()[:4] == b'\x89PNG'
    assert [step for step, _ in val_curve(str(mokd))] == [2, 4]  # AP by iteration
    # A teacher.pth put into a new work dir is reused, not trained again.
    reuse = tmp_path / 'reuse'
    reuse.mkdir()
    shutil.copy(tmp_path / 'demo' / 'teacher.pth', reuse / 'teacher.pth')
    stdout = _demo('--iters', '2', '--evals', '1', '--work-dir', str(reuse))
    assert f'reusing {reuse}/teacher.pth' in stdout
    teacher_row = next(line for line in stdout.splitlines() if line.startswith('| teacher'))
    assert teacher_row.split('|')[5].strip() == '-'  # no training here, so no s / iter
