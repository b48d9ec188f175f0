# MoKD, amortized weights re-evaluated on the same batch (paper, Algorithm 1).
_base_ = ['./_base_/mokd_shapes_cls.py']
