"""PyTorch peer of `resnet50_classifier` (ciGAN's ResNet-50 patch classifier).

Same as gan_zoo: training-time augmentation (rotation uniform in
+-`rotation_degrees`, horizontal flip, a zoom showing the image at 1 / f
of its size, f uniform in [1 / high, 1 / low] of `scale_range`, as the
model configures Keras' RandomZoom; borders reflected), Keras' "caffe"
input (grey repeated to three channels or RGB reversed to BGR, x 255,
ImageNet means subtracted), ResNet-50 exactly as
`keras.applications.ResNet50` builds it (7x7/2 conv 64 with bias, zero
padding 3, BN, ReLU, 3x3/2 max pool with padding 1; bottleneck stacks of
3, 4, 6, 3 blocks with 64, 128, 256, 512 filters (x4 out), the stride on
each stack's FIRST 1x1 conv (ResNet v1, not torchvision's v1.5), every
conv with a bias, a 1x1 projection + BN on each stack's first block; BN
epsilon 1.001e-5, momentum 0.99), global average pooling, a float32 dense
head. Every layer trained, batch norm in training mode. Adam (1e-5, 0.9,
0.999, 1e-8) at a constant rate (the x0.9 step decay changes no work).

Differs: random initial weights whatever `backbone_weights` says (the time
of a step does not depend on them; compare.py runs gan_zoo with
`backbone_weights=None` too); rotation and zoom resample with torch's
`grid_sample` (see `peers.augment`).
"""

import torch
import torch.nn.functional as F
from torch import nn

from .augment import degrees, random_flip, random_rotation, random_zoom
from .base import keras_adam, keras_batch_norm
from .classifier import ClassifierPeer
from .layers import Float32

CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
STACKS = ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2))  # filters, blocks, first stride


def batch_norm(channels):
    return keras_batch_norm(channels, momentum=0.99, epsilon=1.001e-5)


class Bottleneck(nn.Module):
    def __init__(self, width_in, filters, stride, projection):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(width_in, filters, 1, stride=stride), batch_norm(filters), nn.ReLU(),
            nn.Conv2d(filters, filters, 3, padding=1), batch_norm(filters), nn.ReLU(),
            nn.Conv2d(filters, 4 * filters, 1), batch_norm(4 * filters))
        self.shortcut = nn.Identity()
        if projection:
            self.shortcut = nn.Sequential(nn.Conv2d(width_in, 4 * filters, 1, stride=stride),
                                          batch_norm(4 * filters))

    def forward(self, x):
        return F.relu(self.shortcut(x) + self.body(x))


def resnet50_backbone():
    layers = [nn.Conv2d(3, 64, 7, stride=2, padding=3), batch_norm(64), nn.ReLU(),
              nn.MaxPool2d(3, stride=2, padding=1)]
    width_in = 64
    for filters, blocks, stride in STACKS:
        for block in range(blocks):
            layers.append(Bottleneck(width_in, filters, stride if block == 0 else 1, projection=block == 0))
            width_in = 4 * filters
    return nn.Sequential(*layers)


class Network(nn.Module):
    def __init__(self, channels, num_classes):
        super().__init__()
        self.channels = channels
        self.mean = torch.tensor(CAFFE_MEAN_BGR).reshape(1, 3, 1, 1)  # a constant, not a weight
        self.backbone = resnet50_backbone()
        self.head = Float32(nn.Linear(2048, num_classes))

    def forward(self, images):
        x = images.expand(-1, 3, -1, -1) if self.channels == 1 else images.flip(1)
        x = x * 255.0 - self.mean
        return self.head(self.backbone(x).mean(dim=(2, 3)))


class ResNet50Peer(ClassifierPeer):
    def __init__(self, config, batch_size, precision, seed=0):
        num_classes, channels = int(config["num_classes"]), int(config["channels"])
        network = Network(channels, num_classes)
        super().__init__(network, precision, seed, batch_size=batch_size, image_size=int(config["image_size"]),
                         channels=channels, num_classes=num_classes)
        self.augment_images = bool(config["augment"])
        self.rotation = degrees(config["rotation_degrees"])
        low, high = (float(v) for v in config["scale_range"])
        self.zoom = (1.0 / high, 1.0 / low)  # Keras' RandomZoom((1/high - 1, 1/low - 1)): 1 + factor
        self.optimizer = keras_adam(network.parameters(), float(config["learning_rate"]), epsilon=1e-8)
        self.train()

    def augment(self, images):
        if not self.augment_images:
            return images
        images = random_rotation(images, self.rotation, self.draws)
        images = random_flip(images, 3, self.draws)
        return random_zoom(images, *self.zoom, self.draws)


def build(config, batch_size, precision, seed=0):
    """The resnet50_classifier peer for a resolved `resnet50_classifier` registry config."""
    return ResNet50Peer(config, batch_size, precision, seed)
