"""A class-balanced logistic loss whose backward guards against a batch without positives (or negatives)
but whose forward does not: such a batch gives a NaN loss value with a finite gradient, so training goes
on finite while Caffe's displayed (running-mean) loss reads nan from then on."""
import caffe
import numpy as np


class BalancedLoss(caffe.Layer):
    """bottom[0]: scores (N x 1), bottom[1]: labels 0/1 (N); top[0]: the loss."""

    def setup(self, bottom, top):
        if len(bottom) != 2:
            raise Exception("BalancedLoss needs scores and labels")

    def reshape(self, bottom, top):
        top[0].reshape(1)

    def forward(self, bottom, top):
        scores = bottom[0].data.reshape(-1)
        self.positive = bottom[1].data.reshape(-1) > 0.5
        self.prob = 1.0 / (1.0 + np.exp(-scores))
        n_pos, n_neg = np.float32(self.positive.sum()), np.float32((~self.positive).sum())
        with np.errstate(invalid="ignore"):      # the bug: 0 / 0 when a batch has no positives
            top[0].data[0] = (-np.log(self.prob[self.positive]).sum() / n_pos
                              - np.log(1.0 - self.prob[~self.positive]).sum() / n_neg)

    def backward(self, top, propagate_down, bottom):
        if propagate_down[0]:
            n_pos = max(self.positive.sum(), 1)
            n_neg = max((~self.positive).sum(), 1)
            grad = np.where(self.positive, (self.prob - 1.0) / n_pos, self.prob / n_neg)
            bottom[0].diff[...] = top[0].diff[0] * grad.reshape(bottom[0].diff.shape)
