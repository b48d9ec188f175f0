"""The rule-quality benchmark: its runs (the README's plain loop on the
generated task, stopped by the stated criterion) and its bookkeeping (best
and median fixed weight, paired differences, the step a rule reaches the
best fixed weight's accuracy)."""

import argparse

import pytest
import torch

from benchmarks import rule_quality


@pytest.fixture(scope='module')
def small_task():
    task = rule_quality.make_task(0.3, n_teacher=2_000, n_student=256, n_val=256, n_test=512)
    teacher = rule_quality.MLP(rule_quality.TEACHER_WIDTH).eval()  # random: only shapes matter
    with torch.no_grad():
        return task, tuple(teacher(task['student'][0]))


def _args(**kwargs):
    defaults = dict(batch=64, eval_every=4, patience=3, min_gain=0.5, max_steps=40)
    return argparse.Namespace(**{**defaults, **kwargs})


def test_test_labels_are_the_true_classes_and_training_labels_are_noisy():
    clean = rule_quality.make_task(0.0, n_teacher=10, n_student=10, n_val=10, n_test=4000)
    noisy = rule_quality.make_task(0.3, n_teacher=10, n_student=10, n_val=10, n_test=4000)
    assert torch.equal(clean['test'][1], noisy['test'][1])
    x, y = noisy['teacher']
    truth = rule_quality.make_task(0.0, n_teacher=len(x), n_student=10, n_val=10, n_test=10)
    assert torch.equal(truth['teacher'][0], x)
    flipped = float((truth['teacher'][1] != y).float().mean())
    assert 0.0 < flipped < 0.3  # 30% redrawn, a tenth of them to the same class


@pytest.mark.parametrize(
    'variant, recipe',
    [
        ('student alone', 'sgd'),
        ('fixed a=1', 'adamw'),
        ('MoKD amortized (AdamW, paper)', 'adamw'),
        ('DOT', 'sgd'),
        ('PCGrad', 'sgd'),
    ],
)
def test_a_run_stops_by_the_criterion_and_reports_its_best_validation(small_task, variant, recipe):
    task, teacher_out = small_task
    result = rule_quality.run(task, teacher_out, variant, recipe, 0, _args())
    steps = [step for step, _, _ in result['curve']]
    assert steps == list(range(4, result['steps'] + 1, 4))
    best = max(result['curve'], key=lambda point: point[1])
    assert (result['best_step'], result['test']) == (best[0], best[2])
    if result['steps'] < 40:  # stopped early: three validations without a 0.5-point gain
        vals = [val for _, val, _ in result['curve']]
        assert max(vals[-3:]) <= max(vals[:-3]) + 0.5
    diagnosed = variant != 'student alone'
    assert (result['cosine'] is not None) == diagnosed
    if diagnosed:
        assert -1.0 <= result['cosine'] <= 1.0
    # What the rule applied: a fixed weight applies its alpha; MoKD's pi is a weight.
    if variant == 'fixed a=1':
        assert result['applied_alpha'] == pytest.approx(1.0)
    has_pi = variant.startswith('MoKD')
    assert (result['final_pi_distill'] is not None) == has_pi
    if has_pi:
        assert 0.0 < result['final_pi_distill'] < 1.0


def test_dot_is_refused_under_adamw(small_task):
    task, teacher_out = small_task
    with pytest.raises(ValueError, match='DOT applies its own momenta'):
        rule_quality.run(task, teacher_out, 'DOT', 'adamw', 0, _args())


def _run(variant, seed, test, curve=(), cosine=0.0):
    return dict(
        variant=variant,
        recipe='sgd',
        seed=seed,
        test=test,
        steps=100,
        curve=list(curve),
        cosine=cosine,
        log10_dominance=0.0,
        applied_alpha=None,
        final_pi_distill=None,
    )


def test_summary_compares_with_the_best_and_the_median_fixed_weight():
    runs = []
    for seed, shift in enumerate([0.0, 1.0, -1.0]):
        runs += [
            _run('fixed a=0.5', seed, 50 + shift),
            _run('fixed a=1', seed, 60 + shift, cosine=0.2),
            _run('fixed a=2', seed, 55 + shift),
            _run(
                'MoKD',
                seed,
                62 + shift + seed,
                curve=[(50, 0, 59.0), (100, 0, 61.5 + shift)],
                cosine=-0.1,
            ),
        ]
    table = rule_quality.summarize(runs)['sgd']
    assert (table['best'], table['median']) == ('fixed a=1', 'fixed a=2')
    row = table['variants']['MoKD']
    assert row['mean'] == pytest.approx(63.0)
    mean, low, high = row['to_best']  # differences 2, 3, 4: sd 1, t(0.975, 2) = 4.303
    assert mean == pytest.approx(3.0)
    assert (low, high) == pytest.approx((3 - 4.3027 / 3**0.5, 3 + 4.3027 / 3**0.5), abs=1e-3)
    assert row['to_median'][0] == pytest.approx(8.0)
    assert row['cosine_to_a1'][0] == pytest.approx(-0.3)
    # a=1's finals are 60, 61, 59: MoKD's curve reaches them at 100, 100, 50.
    assert row['reaches_best'] == [100, 100, 50]
    table_text = rule_quality.markdown({'sgd': table}, [0, 1, 2])
    assert '| MoKD | 63.0 ± 1.0 | +3.0 [+0.5, +5.5] | +8.0 [' in table_text
