"""PyTorch peer of `cruz_roa_cnn` (Cruz-Roa et al. 2014, Janowczyk's version).

Same as gan_zoo: centre crop to `crop_size`, subtraction of a mean image
(a weight: set, as `throughput.time_training` adapts it, to the mean of
the cropped benchmark batch), training-time random horizontal flip and
(with `rotate`) quarter turns, conv 5x5 32 (pad 2) - max pool 3/2 - ReLU -
conv 5x5 32 - ReLU - average pool 3/2 - conv 5x5 64 - ReLU - average pool
3/2 (the pools with Caffe's ceil rounding, averages over in-image pixels:
Keras' 'same' pools), dense 64, dense logits. AdaGrad (learning rate
1e-3, accumulator from 0) with Caffe's weight decay, `weight_decay` x w
added to every gradient (Keras: L2(weight_decay / 2) on every kernel and
bias, the same gradient).

Differs: torch's AdaGrad adds its epsilon (1e-16) outside the square root
of the accumulator, Keras inside (both negligible beside the gradients);
the softmax is fused into the loss (see `peers.classifier`).
"""

import torch
from torch import nn

from .augment import random_flip, random_rot90
from .classifier import ClassifierPeer


class Network(nn.Module):
    def __init__(self, image_size, crop_size, num_classes):
        super().__init__()
        self.offset, self.crop = (image_size - crop_size) // 2, crop_size
        self.register_buffer("mean", torch.zeros(3, crop_size, crop_size))  # Keras' MeanImageSubtraction
        self.augment = None  # set by the peer: the training-time flips and turns
        side = crop_size
        for _ in range(3):
            side = -(-(side - 3) // 2) + 1  # Caffe's ceil pooling: 32 -> 16 -> 8 -> 4
        self.layers = nn.Sequential(
            nn.Conv2d(3, 32, 5, padding=2), nn.MaxPool2d(3, 2, ceil_mode=True), nn.ReLU(),
            nn.Conv2d(32, 32, 5, padding=2), nn.ReLU(), nn.AvgPool2d(3, 2, ceil_mode=True),
            nn.Conv2d(32, 64, 5, padding=2), nn.ReLU(), nn.AvgPool2d(3, 2, ceil_mode=True),
            nn.Flatten(), nn.Linear(64 * side * side, 64), nn.Linear(64, num_classes))

    def cropped(self, images):
        o, c = self.offset, self.crop
        return images[:, :, o : o + c, o : o + c]

    def forward(self, images):
        x = self.cropped(images) - self.mean
        if self.augment is not None:
            x = self.augment(x)
        return self.layers(x)


class CruzRoaPeer(ClassifierPeer):
    def __init__(self, config, batch_size, precision, seed=0):
        num_classes = int(config["num_classes"])
        network = Network(int(config["image_size"]), int(config["crop_size"]), num_classes)
        super().__init__(network, precision, seed, batch_size=batch_size, image_size=int(config["image_size"]),
                         channels=3, num_classes=num_classes)
        with torch.no_grad():
            network.mean.copy_(network.cropped(self.images).mean(dim=0))
        if config["augment"]:
            rotate = bool(config["rotate"])

            def augment(x):
                x = random_flip(x, 3, self.draws)
                return random_rot90(x, self.draws) if rotate else x

            network.augment = augment
        self.optimizer = torch.optim.Adagrad(network.parameters(), lr=1e-3, initial_accumulator_value=0.0,
                                             eps=1e-16, weight_decay=float(config["weight_decay"]))
        self.train()


def build(config, batch_size, precision, seed=0):
    """The cruz_roa_cnn peer for a resolved `cruz_roa_cnn` registry config."""
    return CruzRoaPeer(config, batch_size, precision, seed)
