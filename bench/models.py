"""ResNet-18 and VGG-19 with torchvision's layer shapes (``torchvision.models.resnet18`` and
``vgg19``, without batch-norm in VGG), written here because torchvision has no build for
the CPU torch 2.13.0 the project pins. Same modules, order, hyperparameters and parameter
shapes; weights are torch's default initialisation (torchvision re-initialises some)."""

from __future__ import annotations

from torch import Tensor, nn

__all__ = ["resnet18", "vgg19", "MODELS"]


class BasicBlock(nn.Module):
    """Two 3×3 convolutions with batch-norm and a shortcut (a strided 1×1 convolution
    where the shape changes)."""

    def __init__(self, inplanes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample: nn.Module | None = None
        if stride != 1 or inplanes != planes:
            self.downsample = nn.Sequential(nn.Conv2d(inplanes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(out + identity)


class ResNet18(nn.Module):
    """torchvision's ``resnet18``: a 7×7 stride-2 stem, max-pooling, four stages of two
    basic blocks (64, 128, 256, 512 channels), global average pooling, one linear layer."""

    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        widths = (64, 128, 256, 512)
        stages = []
        for i, planes in enumerate(widths):
            inplanes = widths[max(i - 1, 0)]
            stages.append(nn.Sequential(BasicBlock(inplanes, planes, 1 if i == 0 else 2), BasicBlock(planes, planes)))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(self.avgpool(x).flatten(1))


def resnet18(num_classes: int = 1000) -> nn.Module:
    """ResNet-18 (11.7 M parameters with 1000 classes)."""
    return ResNet18(num_classes)


class VGG19(nn.Module):
    """torchvision's ``vgg19`` (configuration "E"): sixteen 3×3 convolutions with biases in
    five stages separated by max-pooling, average pooling to 7×7, three linear layers."""

    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = 3
        for width, repeat in ((64, 2), (128, 2), (256, 4), (512, 4), (512, 4)):
            for _ in range(repeat):
                layers += [nn.Conv2d(channels, width, 3, padding=1), nn.ReLU(inplace=True)]
                channels = width
            layers.append(nn.MaxPool2d(2, 2))
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.classifier = nn.Sequential(
            nn.Linear(512 * 7 * 7, 4096), nn.ReLU(True), nn.Dropout(),
            nn.Linear(4096, 4096), nn.ReLU(True), nn.Dropout(),
            nn.Linear(4096, num_classes),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.avgpool(self.features(x)).flatten(1))


def vgg19(num_classes: int = 1000) -> nn.Module:
    """VGG-19 (143.7 M parameters with 1000 classes)."""
    return VGG19(num_classes)


MODELS = {"resnet18": resnet18, "vgg19": vgg19}
