"""What the PyTorch comparison scripts of `bench/` share: pcam's two architectures written
in torch.nn, and an atomic result-file write (temporary file, then rename)."""
import json
import os

import torch.nn as nn


def mlp(hidden, dropout):
    """pcam's MLP: flatten, then Linear-ReLU-Dropout per hidden width, then one logit."""
    layers, width = [nn.Flatten()], 96 * 96 * 3
    for h in hidden:
        layers += [nn.Linear(width, h), nn.ReLU(), nn.Dropout(dropout)]
        width = h
    return nn.Sequential(*layers, nn.Linear(width, 1))


def cnn(channels, hidden, dropout):
    """pcam's CNN: conv(3x3, no bias)-BN-ReLU-maxpool blocks, global average pooling, head."""
    layers, c = [], 3
    for o in channels:
        layers += [nn.Conv2d(c, o, 3, padding=1, bias=False), nn.BatchNorm2d(o), nn.ReLU(),
                   nn.MaxPool2d(2)]
        c = o
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
    for h in hidden:
        layers += [nn.Linear(c, h), nn.ReLU(), nn.Dropout(dropout)]
        c = h
    return nn.Sequential(*layers, nn.Linear(c, 1))


def write_json_atomic(path, obj):
    """Writes `obj` as indented JSON to `path` through a temporary file and a rename."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as fh:
        json.dump(obj, fh, indent=2)
    os.replace(tmp, path)
    print(f"wrote {path}")
