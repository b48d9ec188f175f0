"""Count the parameters of a config's model (for a MoKD distiller: the
student, the teacher and the connectors separately).

Usage: python tools/analysis/count_params.py CONFIG [CONFIG ...]
"""

import argparse

from mmengine.config import Config
from mmengine.registry import MODELS, DefaultScope


def millions(module) -> float:
    return sum(p.numel() for p in module.parameters()) / 1e6


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('configs', nargs='+')
    args = parser.parse_args()
    for path in args.configs:
        cfg = Config.fromfile(path)  # imports the config's custom_imports
        model_cfg = cfg.model.to_dict()
        if 'teacher_ckpt' in model_cfg:
            model_cfg['teacher_ckpt'] = None  # sizes do not need the weights
        with DefaultScope.overwrite_default_scope(cfg.get('default_scope')):
            model = MODELS.build(model_cfg)
        if hasattr(model, 'teacher'):
            print(
                f'{path}: student {millions(model.student):.2f}M, teacher '
                f'{millions(model.teacher):.2f}M, connectors '
                f'{millions(model.distill_losses):.2f}M'
            )
        else:
            print(f'{path}: {millions(model):.2f}M')


if __name__ == '__main__':
    main()
