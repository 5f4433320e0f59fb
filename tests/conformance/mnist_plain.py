"""pytorch/examples mnist/main.py in plain torch, on the digits (see settings.MNIST for what differs and why).

Net, train() and test() follow the example line for line; data come from `digits` instead of torchvision,
and Adadelta(lr=1.0) with StepLR as in the example.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.optim as optim
from torch.optim.lr_scheduler import StepLR

from tests.conformance import digits
from tests.conformance.settings import MNIST

ENGINE = "pytorch"


class Net(nn.Module):
    def __init__(self, p_drop=(0.25, 0.5)):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, 1)
        self.conv2 = nn.Conv2d(32, 64, 3, 1)
        self.dropout1 = nn.Dropout(p_drop[0])
        self.dropout2 = nn.Dropout(p_drop[1])
        self.fc1 = nn.Linear(9216, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x):
        x = F.relu(self.conv1(x))
        x = F.relu(self.conv2(x))
        x = F.max_pool2d(x, 2)
        x = self.dropout1(x)
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x))
        x = self.dropout2(x)
        x = self.fc2(x)
        return F.log_softmax(x, dim=1)


def export(model: nn.Module) -> dict[str, np.ndarray]:
    """state_dict as {path: array} under Nebulae's names ('.' -> '/')."""
    return {k.replace(".", "/"): v.detach().cpu().numpy().copy() for k, v in model.state_dict().items()}


def restore(model: nn.Module, weights: dict[str, np.ndarray]) -> None:
    model.load_state_dict({k.replace("/", "."): torch.from_numpy(np.array(v)) for k, v in weights.items()})


def initial_weights() -> dict[str, np.ndarray]:
    torch.manual_seed(1)  # the example's --seed default
    return export(Net())


def train(model, train_loader, optimizer, losses):
    model.train()
    for data, target in train_loader:
        data, target = torch.from_numpy(data), torch.from_numpy(target)
        optimizer.zero_grad()
        output = model(data)
        loss = F.nll_loss(output, target)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())


def test(model, test_loader):
    model.eval()
    test_loss, correct, n = 0.0, 0, 0
    with torch.no_grad():
        for data, target in test_loader:
            data, target = torch.from_numpy(data), torch.from_numpy(target)
            output = model(data)
            test_loss += F.nll_loss(output, target, reduction="sum").item()
            pred = output.argmax(dim=1, keepdim=True)
            correct += pred.eq(target.view_as(pred)).sum().item()
            n += len(data)
    return test_loss / n, correct


def run(steps: int, init_weights: dict[str, np.ndarray], lr_scale: float = 1.0) -> dict:
    cfg = MNIST
    model = Net(cfg["p_drop"])
    restore(model, init_weights)
    optimizer = optim.Adadelta(model.parameters(), lr=cfg["lr"] * lr_scale)
    scheduler = StepLR(optimizer, step_size=1, gamma=cfg["gamma"])
    batches = digits.batches(cfg["size"], cfg["batch"], steps, norm=cfg["norm"])
    losses: list[float] = []
    for start in range(0, steps, cfg["epoch_len"]):
        train(model, batches[start : start + cfg["epoch_len"]], optimizer, losses)
        scheduler.step()
    test_loss, correct = test(model, [digits.held_out(cfg["size"], cfg["test"], cfg["norm"])])
    return {
        "losses": {"train": np.array(losses)},
        "weights": export(model),
        "eval": {"test_loss": np.asarray(test_loss), "correct": np.asarray(float(correct))},
    }
