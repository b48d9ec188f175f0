"""Connectors: map a student feature and a teacher feature into one space
where a feature loss compares them.

Every connector is called as ``connector(student, teacher)`` and returns the
pair ``(student_out, teacher_out)`` with equal channel sizes. Features are
laid out as :mod:`.layout` says; the maps act on the channels.
"""

from typing import Optional, Tuple

import torch
from torch import nn
from torch.nn.utils import parametrizations, parametrize

from .layout import apply_on_channels, channel_size

__all__ = [
    'QROrthonormal',
    'orthonormal_linear',
    'LinearConnector',
    'OrthogonalProjector',
    'IndefiniteSubspaceConnector',
]


def _check_channels(name: str, x: torch.Tensor, expected: int) -> None:
    if channel_size(x) != expected:
        raise ValueError(
            f'{name} feature has {channel_size(x)} channels '
            f'(shape {tuple(x.shape)}), the connector expects '
            f'{expected}'
        )


class _Connector(nn.Module):
    """Shape checks shared by the connectors."""

    def __init__(self, student_dim: int, teacher_dim: int):
        super().__init__()
        for key, value in (('student_dim', student_dim), ('teacher_dim', teacher_dim)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f'{key} must be a positive int, got {value!r}')
        self.student_dim = student_dim
        self.teacher_dim = teacher_dim

    def forward(
        self, student: torch.Tensor, teacher: torch.Tensor
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        _check_channels('student', student, self.student_dim)
        _check_channels('teacher', teacher, self.teacher_dim)
        return self.connect(student, teacher)

    def connect(self, student, teacher):
        raise NotImplementedError


class LinearConnector(_Connector):
    """A plain learned linear map of the student into the teacher's space
    (FitNets-style hint regressor); the teacher passes unchanged.

    Args:
        student_dim (int): C_s.
        teacher_dim (int): C_t.
        bias (bool): learn a bias. Defaults to True.
    """

    def __init__(self, student_dim: int, teacher_dim: int, bias: bool = True):
        super().__init__(student_dim, teacher_dim)
        self.proj = nn.Linear(student_dim, teacher_dim, bias=bias)

    def connect(self, student, teacher):
        return apply_on_channels(self.proj, student), teacher


class QROrthonormal(nn.Module):
    """A parametrization (:func:`torch.nn.utils.parametrize.register_parametrization`)
    onto matrices with orthonormal columns (rows, for a wide matrix): the Q
    of the reduced QR decomposition of the free tensor, with the signs that
    make R's diagonal positive (so the map is continuous and an orthonormal
    matrix maps to itself).

    A thin (n, k) matrix costs O(n k^2) per forward, against O(n^3) for
    torch's ``'cayley'`` and ``'matrix_exp'`` maps, which embed it in an
    n x n orthogonal matrix. Q does not change when the free tensor is
    scaled, so weight decay on it (as every model optimizer applies) only
    changes its norm.
    """

    def forward(self, free: torch.Tensor) -> torch.Tensor:
        wide = free.shape[-2] < free.shape[-1]
        if wide:
            free = free.mT
        q, r = torch.linalg.qr(free)
        signs = torch.sign(torch.diagonal(r, dim1=-2, dim2=-1))
        q = q * torch.where(signs == 0, torch.ones_like(signs), signs).unsqueeze(-2)
        return q.mT if wide else q

    def right_inverse(self, weight: torch.Tensor) -> torch.Tensor:
        return weight


ORTHOGONAL_MAPS = ('qr', 'cayley', 'matrix_exp', 'householder')


def orthonormal_linear(
    in_features: int, out_features: int, orthogonal_map: str = 'qr'
) -> nn.Linear:
    """A bias-free ``nn.Linear`` whose weight (out, in) is constrained to
    orthonormal columns (rows when out < in), starting from a random such
    matrix.

    Args:
        orthogonal_map (str): ``'qr'`` (:class:`QROrthonormal`, default), or
            one of torch's maps for
            :func:`torch.nn.utils.parametrizations.orthogonal`: ``'cayley'``
            and ``'matrix_exp'`` (O(n^3) per forward, n the larger side, and
            an n x n ``base`` buffer in the state dict), ``'householder'``
            (torch's default for non-square weights; it keeps column signs as
            exact +-1 in its free tensor and truncates them with ``int()``,
            so weight decay zeroes the projection within a few steps).
    """
    if orthogonal_map not in ORTHOGONAL_MAPS:
        raise ValueError(f'orthogonal_map must be one of {ORTHOGONAL_MAPS}, got {orthogonal_map!r}')
    linear = nn.Linear(in_features, out_features, bias=False)
    if orthogonal_map != 'qr':
        return parametrizations.orthogonal(linear, orthogonal_map=orthogonal_map)
    nn.init.orthogonal_(linear.weight)
    parametrize.register_parametrization(linear, 'weight', QROrthonormal())
    return linear


class OrthogonalProjector(_Connector):
    """VkD's projector: the student is mapped into the teacher's space by
    ``P`` with orthonormal columns (``P in St(C_t, C_s)``, needs
    ``C_t >= C_s``; for ``C_t < C_s`` the rows are orthonormal instead);
    the teacher passes unchanged.

    Args:
        student_dim (int): C_s.
        teacher_dim (int): C_t.
        affine (bool): follow the projection with a learned per-channel
            scale and bias (VkD's detection projector). Defaults to False.
        orthogonal_map (str): how the constraint is kept, see
            :func:`orthonormal_linear`. Defaults to ``'qr'``.
    """

    def __init__(
        self, student_dim: int, teacher_dim: int, affine: bool = False, orthogonal_map: str = 'qr'
    ):
        super().__init__(student_dim, teacher_dim)
        self.proj = orthonormal_linear(student_dim, teacher_dim, orthogonal_map)
        if affine:
            self.scale = nn.Parameter(torch.ones(teacher_dim))
            self.bias = nn.Parameter(torch.zeros(teacher_dim))
        else:
            self.scale = self.bias = None

    def project(self, x: torch.Tensor) -> torch.Tensor:
        """``P x`` (and the affine part), channels last."""
        y = self.proj(x)
        if self.scale is not None:
            y = y * self.scale + self.bias
        return y

    def connect(self, student, teacher):
        return apply_on_channels(self.project, student), teacher


class IndefiniteSubspaceConnector(_Connector):
    """MoKD's subspace alignment (eq. 16).

    Student and teacher features are lifted into a common space of ``dim``
    channels by their own projections with orthonormal columns,
    ``P_s in St(dim, C_s)`` and ``P_t in St(dim, C_t)``, and compared there
    under a learned diagonal metric ``D`` with entries of any sign (an
    indefinite inner product ``<P_t z_t, D P_s z_s>``). For a distance-type
    feature loss the connector returns ``(D P_s z_s, P_t z_t)``: ``D`` acts on
    the student side, so the teacher's lifted feature keeps its norm
    (``P_t`` is an isometry) and cannot be shrunk to make the loss small.

    Ablations (the paper's Table 3): ``indefinite=False`` fixes ``D`` to
    the identity (a positive-definite metric); ``dim=max(C_s, C_t)`` gives an
    alignment without room beyond the larger feature space; VkD's single
    projector, without a second subspace, is :class:`OrthogonalProjector`.

    Args:
        student_dim (int): C_s.
        teacher_dim (int): C_t.
        dim (int, optional): the common dimension n. Defaults to
            ``C_s + C_t``, the smallest space that holds both subspaces
            without forcing them to overlap. Must be >= max(C_s, C_t).
        indefinite (bool): learn the sign-free diagonal ``D`` (ones at
            init). Defaults to True.
        orthogonal_map (str): see :func:`orthonormal_linear`. Defaults to
            ``'qr'``.
    """

    def __init__(
        self,
        student_dim: int,
        teacher_dim: int,
        dim: Optional[int] = None,
        indefinite: bool = True,
        orthogonal_map: str = 'qr',
    ):
        super().__init__(student_dim, teacher_dim)
        self.dim = dim if dim is not None else student_dim + teacher_dim
        if self.dim < max(student_dim, teacher_dim):
            raise ValueError(
                f'dim={self.dim} must be >= max(student_dim, teacher_dim)'
                f'={max(student_dim, teacher_dim)} so that both '
                'projections have orthonormal columns'
            )
        self.student_proj = OrthogonalProjector(
            student_dim, self.dim, orthogonal_map=orthogonal_map
        )
        self.teacher_proj = OrthogonalProjector(
            teacher_dim, self.dim, orthogonal_map=orthogonal_map
        )
        if indefinite:
            self.metric = nn.Parameter(torch.ones(self.dim))
        else:
            self.register_buffer('metric', torch.ones(self.dim), persistent=False)

    def connect(self, student, teacher):

        def lift_student(x):
            return self.student_proj.project(x) * self.metric

        return (
            apply_on_channels(lift_student, student),
            apply_on_channels(self.teacher_proj.project, teacher),
        )
