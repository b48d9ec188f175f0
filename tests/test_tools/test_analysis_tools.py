import json
import os
import subprocess
import sys

import pytest

from tests.conftest import REPO


def _write_log(path, with_pi=True):
    path.parent.mkdir(parents=True)
    with open(path, 'w') as f:
        for it in range(1, 6):
            record = {'iter': it, 'lr': 0.1, 'loss_task': 1.0 / it}
            if with_pi:
                record.update({'mokd/pi_distill': 0.5 - it / 100, 'mokd/pi_task': 0.5 + it / 100})
                record.update({'mokd/weight_distill': 0.8, 'mokd/weight_task': 0.2})
            if it % 2 == 0:
                record.update(
                    {
                        'mokd/conflict': -0.1 * it,
                        'mokd/conflict_cos': -0.2,
                        'mokd/dominance': 0.5 * it,
                    }
                )
            f.write(json.dumps(record) + '\n')
        for step, ap in ((3, 0.1), (5, 0.2)):
            f.write(json.dumps({'coco/bbox_mAP': ap, 'step': step}) + '\n')


def test_plots_from_a_work_dir(tmp_path):
    _write_log(tmp_path / 'run' / '20260101_000000' / 'vis_data' / 'scalars.json')
    out = subprocess.run(
        [
            sys.executable,
            'tools/plot_mokd.py',
            str(tmp_path / 'run'),
            '--out-dir',
            str(tmp_path / 'plots'),
        ],
        cwd=REPO,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    names = sorted(p.name for p in (tmp_path / 'plots').iterdir())
    assert names == ['mokd_conflict.png', 'mokd_dominance.png', 'mokd_pi.png', 'mokd_val.png']
    assert all((tmp_path / 'plots' / n).read_bytes()[:4] == b'\x89PNG' for n in names)
    assert out.count('.png') == 4


def test_val_curves_of_compared_runs_are_read(tmp_path):
    sys.path.insert(0, f'{REPO}/tools')
    from plot_mokd import plot

    log = tmp_path / 'mokd' / 'vis_data' / 'scalars.json'
    baseline = tmp_path / 'fixed' / 'vis_data' / 'scalars.json'
    _write_log(log)
    _write_log(baseline, with_pi=False)
    assert (tmp_path / 'p' / 'mokd_val.png') in map(
        type(tmp_path), plot(str(log), str(tmp_path / 'p'), [('fixed', str(baseline))])
    )
    no_val = tmp_path / 'alone' / 'vis_data' / 'scalars.json'
    no_val.parent.mkdir(parents=True)
    no_val.write_text(json.dumps({'iter': 1, 'lr': 0.1}) + '\n')
    with pytest.raises(KeyError, match=r"--compare alone\) has no 'coco/bbox_mAP'"):
        plot(str(log), str(tmp_path / 'p'), [('alone', str(no_val))])
    bad = subprocess.run(
        [sys.executable, 'tools/plot_mokd.py', str(log), '--compare', str(baseline)],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert bad.returncode != 0 and 'NAME=WORK_DIR' in bad.stderr


def test_a_run_without_mokd_weights_is_refused(tmp_path):
    sys.path.insert(0, f'{REPO}/tools')
    from plot_mokd import plot

    log = tmp_path / 'x' / 'vis_data' / 'scalars.json'
    _write_log(log, with_pi=False)
    with pytest.raises(KeyError, match='no mokd/pi_'):
        plot(str(log), str(tmp_path / 'plots'))


def test_count_params_reports_student_teacher_and_connectors():
    from tests.conftest import MOKD_CFG, STUDENT_CFG

    out = subprocess.run(
        [sys.executable, 'tools/analysis/count_params.py', STUDENT_CFG, MOKD_CFG],
        cwd=REPO,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.splitlines()
    assert out[0].endswith(': 0.18M')  # 176,012 parameters (the demo's table)
    # Connector: P_s (192 x 64) + P_t (192 x 128) + D (192) = 37,056.
    assert out[1].endswith('student 0.18M, teacher 0.70M, connectors 0.04M')


def test_each_quantity_is_on_an_axis_where_it_can_be_read(tmp_path, monkeypatch):
    """The cosine on its own axis in [-1, 1], not beside inner products in
    the hundreds; pi beside the weights the steps applied; AP in percent,
    the demo table's unit."""
    sys.path.insert(0, f'{REPO}/tools')
    import plot_mokd

    drawn = {}
    monkeypatch.setattr(
        plot_mokd,
        '_figure',
        lambda path, title, panels: drawn.setdefault(os.path.basename(path), panels) and path,
    )
    log = tmp_path / 'run' / 'vis_data' / 'scalars.json'
    _write_log(log)
    plot_mokd.plot(str(log), str(tmp_path))
    (product, _, _, _), (cosine, curves, _, options) = drawn['mokd_conflict.png']
    assert options['ylim'] == (-1, 1) and [c[0] for c in curves] == ['cosine']
    (_, pis, _, _), (_, weights, _, _) = drawn['mokd_pi.png']
    assert [c[0] for c in pis] == [c[0] for c in weights] == ['distill', 'task']
    ((_, val, label, _),) = drawn['mokd_val.png']
    assert label == 'bbox AP (%)' and [y for _, y in val[0][1]] == pytest.approx([10.0, 20.0])
