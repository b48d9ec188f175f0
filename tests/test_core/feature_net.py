"""A small network with BatchNorm and Dropout that returns its features and
its logits, for the tests of taps and re-evaluation."""

from torch import nn


class FeatureNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6), nn.Dropout(0.5))
        self.head = nn.Linear(6, 3)

    def forward(self, x):
        """(N, 4) -> features (N, 6), logits (N, 3)."""
        feat = self.body(x)
        return feat, self.head(feat)
