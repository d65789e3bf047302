"""The classifier peers' shared step: augment, forward, cross-entropy, one update.

gan_zoo's classifiers are Keras models trained by `fit` on (images in
[0, 1], integer labels), their augmentation inside the graph and the loss
a sparse cross-entropy of the softmax output; the peer computes the same
cross-entropy from the logits (`F.cross_entropy`, float32), the softmax
and its log fused. One optimizer over the trained weights. The network's
weight count is reported under "classifier" (Keras: `model.count_params()`).
"""

import numpy as np
import torch
import torch.nn.functional as F

from .base import Peer, integer_labels, uniform_images


class ClassifierPeer(Peer):
    """A classifier's network, augmentation, optimizer and training step.

    Args:
        network: nn.Module mapping augmented [0, 1] images (NCHW) to logits.
        precision: "float32" or "mixed_bfloat16".
        seed: seed of the weights, the batch and the augmentation draws.
        batch_size: images per step.
        image_size: side of the square input images.
        channels: image channels.
        num_classes: classes of the labels.
    """

    def __init__(self, network, precision, seed, *, batch_size, image_size, channels, num_classes):
        super().__init__(precision, seed)
        self.network = network
        self.networks = {"classifier": network}
        rng = np.random.default_rng(seed)
        self.images = uniform_images(rng, batch_size, image_size, channels, 0.0, 1.0)
        self.labels = integer_labels(rng, batch_size, num_classes)
        self.optimizer = None  # set by the subclass, over the weights it trains

    def augment(self, images):
        """The training-time augmentation (none by default)."""
        return images

    def train_step(self):
        logits = self.network(self.augment(self.images))
        loss = F.cross_entropy(logits.float(), self.labels)
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        return loss.detach()


def keras_adamw(parameters, learning_rate, weight_decay, beta_1=0.9, beta_2=0.999, epsilon=1e-7):
    """torch AdamW with Keras' defaults (decoupled decay on every weight, epsilon 1e-7)."""
    return torch.optim.AdamW(parameters, lr=learning_rate, betas=(beta_1, beta_2), eps=epsilon,
                             weight_decay=weight_decay)
