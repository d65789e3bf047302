"""PyTorch peer of `small_cnn` (the zoo's conv-BN-ReLU baseline, no paper).

Same as gan_zoo: training-time random horizontal flip then a random
quarter turn per image; four stages of two 3x3 conv (no bias) - BN (Keras
epsilon 1e-3, momentum 0.9) - ReLU blocks, widths `width` x (32, 64, 128,
256) rounded, 2x2 max pooling with ceil rounding (Keras' 'same') between
stages; global average pooling, dropout, dense logits. AdamW (1e-3, weight
decay 1e-4 on every weight, epsilon 1e-7) at a constant rate, as
`compile()` without an optimizer gives; sparse cross-entropy.

Differs: `label_smoothing` is passed to the cross-entropy as torch's
`label_smoothing` (the same targets). Keras' head runs its softmax inside
the model; the peer fuses it into the loss (see `peers.classifier`).
"""

import torch.nn.functional as F
from torch import nn

from .augment import random_flip, random_rot90
from .base import keras_batch_norm
from .classifier import ClassifierPeer, keras_adamw

BASE_WIDTHS = (32, 64, 128, 256)


def build_network(num_classes, width, dropout):
    widths = [max(1, int(round(w * width))) for w in BASE_WIDTHS]
    layers, width_in = [], 3
    for stage, filters in enumerate(widths, start=1):
        if stage > 1:
            layers.append(nn.MaxPool2d(2, ceil_mode=True))
        for _ in range(2):
            layers += [nn.Conv2d(width_in, filters, 3, padding=1, bias=False),
                       keras_batch_norm(filters, momentum=0.9), nn.ReLU()]
            width_in = filters
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout), nn.Linear(width_in, num_classes)]
    return nn.Sequential(*layers)


class SmallCNNPeer(ClassifierPeer):
    def __init__(self, config, batch_size, precision, seed=0):
        num_classes = int(config["num_classes"])
        network = build_network(num_classes, float(config["width"]), float(config["dropout"]))
        super().__init__(network, precision, seed, batch_size=batch_size, image_size=int(config["image_size"]),
                         channels=3, num_classes=num_classes)
        self.augment_images = bool(config["augment"])
        self.label_smoothing = float(config["label_smoothing"])
        self.optimizer = keras_adamw(network.parameters(), 1e-3, weight_decay=1e-4)
        self.train()

    def augment(self, images):
        if not self.augment_images:
            return images
        return random_rot90(random_flip(images, 3, self.draws), self.draws)

    def train_step(self):
        logits = self.network(self.augment(self.images))
        loss = F.cross_entropy(logits.float(), self.labels, label_smoothing=self.label_smoothing)
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        return loss.detach()


def build(config, batch_size, precision, seed=0):
    """The small_cnn peer for a resolved `small_cnn` registry config."""
    return SmallCNNPeer(config, batch_size, precision, seed)
