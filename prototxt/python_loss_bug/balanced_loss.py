"""A class-balanced logistic loss with a classic bug: it divides by the number of positives (and of
negatives) in the batch, so a batch without positives gives 0 / 0 = NaN in forward."""
import caffe
import numpy as np


class BalancedLogisticLoss(caffe.Layer):
    """bottom[0]: scores (N x 1), bottom[1]: labels 0/1 (N); top[0]: the loss."""

    def setup(self, bottom, top):
        if len(bottom) != 2:
            raise Exception("BalancedLogisticLoss needs scores and labels")

    def reshape(self, bottom, top):
        top[0].reshape(1)

    def forward(self, bottom, top):
        scores = bottom[0].data.reshape(-1)
        positive = bottom[1].data.reshape(-1) > 0.5
        self.prob = 1.0 / (1.0 + np.exp(-scores))
        self.n_pos = np.float32(positive.sum())          # the bug: no guard against 0
        self.n_neg = np.float32((~positive).sum())
        self.positive = positive
        top[0].data[0] = (-np.log(self.prob[positive]).sum() / self.n_pos
                          - np.log(1.0 - self.prob[~positive]).sum() / self.n_neg)

    def backward(self, top, propagate_down, bottom):
        if propagate_down[0]:
            grad = np.where(self.positive, (self.prob - 1.0) / self.n_pos, self.prob / self.n_neg)
            bottom[0].diff[...] = top[0].diff[0] * grad.reshape(bottom[0].diff.shape)
