from .mokd_distiller import DistillLoss, MoKDDistiller, load_model_config

__all__ = ['DistillLoss', 'MoKDDistiller', 'load_model_config']
