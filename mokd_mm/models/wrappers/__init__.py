from .mokd_data_parallel import MoKDDistributedDataParallel

__all__ = ['MoKDDistributedDataParallel']
