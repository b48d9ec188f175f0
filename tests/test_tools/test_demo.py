"""A cut-down run of the README's main command (tools/demo.py)."""
import subprocess
import sys

from tests.conftest import REPO


def test_demo_end_to_end(tmp_path):
    work_dir = tmp_path / 'demo'
    out = subprocess.run(
        [sys.executable, 'tools/demo.py', '--iters', '4', '--teacher-iters', '4',
         '--work-dir', str(work_dir)],
        cwd=REPO, capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    table = [line for line in out.stdout.splitlines() if line.startswith('| ')]
    names = [line.split('|')[1].strip() for line in table[1:]]
    assert names == ['teacher', 'student alone', 'KD, fixed weights', 'MoKD (amortized)']
    assert (work_dir / 'teacher.pth').exists()
    assert (work_dir / 'mokd_resnet18-w8_resnet18-w16_shapes' / 'mokd_pi.png').exists()
