"""PyTorch peer of `resnet18_classifier` (Chi, Fang & Wang's ResNet-18 transfer).

Same as gan_zoo: training-time perturbations (independent horizontal and
vertical flips, a rotation uniform in +-`rotation_degrees` with reflected
borders, Gaussian noise of `noise_std`), an optional bilinear resize to
`resize_to`, ImageNet mean/std normalisation, ResNet-18 as keras-hub's
`ResNetBackbone` builds it (He et al. 2016, table 1: 7x7/2 conv 64 with
zero padding 3, BN, ReLU, 3x3/2 max pool with padding 1; four stacks of two
basic blocks, 64-128-256-512, strides 1-2-2-2, 3x3 convs without bias, a
1x1 projection + BN on the first block of stacks 2-4; BN epsilon 1e-5,
momentum 0.9: the torchvision layout), global average pooling, dropout,
a float32 dense head. `protocol="frozen"` (the paper): the backbone in
inference mode without gradients, only the head trained; "full": every
layer trained, batch norm in training mode. SGD (learning_rate, momentum
0.9) at a constant rate (the StepLR decay changes no work).

Differs: random initial weights whatever `backbone_weights` says (the time
of a step does not depend on them; compare.py runs gan_zoo with
`backbone_weights=None` too); the rotation resamples with torch's
`grid_sample` (see `peers.augment`).
"""

import torch
import torch.nn.functional as F
from torch import nn

from .augment import degrees, gaussian_noise, random_flip, random_rotation
from .classifier import ClassifierPeer
from .layers import Float32

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def batch_norm(channels):
    return nn.BatchNorm2d(channels, eps=1e-5, momentum=0.1)  # keras-hub: momentum 0.9


class BasicBlock(nn.Module):
    def __init__(self, width_in, width, stride, projection):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(width_in, width, 3, stride=stride, padding=1, bias=False), batch_norm(width), nn.ReLU(),
            nn.Conv2d(width, width, 3, padding=1, bias=False), batch_norm(width))
        self.shortcut = nn.Identity()
        if projection:
            self.shortcut = nn.Sequential(nn.Conv2d(width_in, width, 1, stride=stride, bias=False),
                                          batch_norm(width))

    def forward(self, x):
        return F.relu(self.shortcut(x) + self.body(x))


def resnet18_backbone():
    layers = [nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False), batch_norm(64), nn.ReLU(),
              nn.MaxPool2d(3, stride=2, padding=1)]
    width_in = 64
    for stack, (width, stride) in enumerate(zip((64, 128, 256, 512), (1, 2, 2, 2))):
        for block in range(2):
            layers.append(BasicBlock(width_in, width, stride if block == 0 else 1,
                                     projection=block == 0 and stack > 0))
            width_in = width
    return nn.Sequential(*layers)


class Network(nn.Module):
    def __init__(self, num_classes, resize_to, dropout):
        super().__init__()
        self.resize_to = resize_to
        self.mean = torch.tensor(IMAGENET_MEAN).reshape(1, 3, 1, 1)  # constants, not weights
        self.std = torch.tensor(IMAGENET_STD).reshape(1, 3, 1, 1)
        self.backbone = resnet18_backbone()
        self.dropout = nn.Dropout(dropout) if dropout else nn.Identity()
        self.head = Float32(nn.Linear(512, num_classes))
        self.frozen = False

    def forward(self, images):
        x = images
        if self.resize_to is not None:
            x = F.interpolate(x, size=(self.resize_to, self.resize_to), mode="bilinear", align_corners=False)
        x = (x - self.mean) / self.std
        if self.frozen:
            with torch.no_grad():
                features = self.backbone(x)
        else:
            features = self.backbone(x)
        return self.head(self.dropout(features.mean(dim=(2, 3))))


class ResNet18Peer(ClassifierPeer):
    def __init__(self, config, batch_size, precision, seed=0):
        num_classes = int(config["num_classes"])
        network = Network(num_classes, config["resize_to"], float(config["dropout"]))
        super().__init__(network, precision, seed, batch_size=batch_size, image_size=int(config["image_size"]),
                         channels=3, num_classes=num_classes)
        self.rotation = degrees(config["rotation_degrees"])
        self.flips, self.noise_std = bool(config["flips"]), float(config["noise_std"])
        network.frozen = config["protocol"] == "frozen"
        network.backbone.requires_grad_(not network.frozen)
        trained = network.head.parameters() if network.frozen else network.parameters()
        self.optimizer = torch.optim.SGD(trained, lr=float(config["learning_rate"]), momentum=0.9)
        self.train()

    def train(self):
        super().train()
        if self.network.frozen:
            self.network.backbone.eval()  # Keras: a frozen backbone runs in inference mode
        return self

    def augment(self, images):
        if self.flips:
            images = random_flip(random_flip(images, 3, self.draws), 2, self.draws)
        if self.rotation:
            images = random_rotation(images, self.rotation, self.draws)
        if self.noise_std:
            images = gaussian_noise(images, self.noise_std, self.draws)
        return images


def build(config, batch_size, precision, seed=0):
    """The resnet18_classifier peer for a resolved `resnet18_classifier` registry config."""
    return ResNet18Peer(config, batch_size, precision, seed)
