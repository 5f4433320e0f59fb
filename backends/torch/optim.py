"""The optimizer base on torch (the optimizers are written once in nebulae/astro/crafts/updaters.py).

`optz(loss)` inside a step records the objective; when the step's `run` returns, the loss is
differentiated with respect to this optimizer's parameters only (into its own accumulator), and
every `grad_accum` calls: unscale, clip, set the scheduled rate, step (see `step.py` and
`nebulae.astro.optconf`). Called outside any step, `optz(loss)` does both at once.
"""

from __future__ import annotations

import weakref

import torch

from nebulae.astro import optconf, statedict
from nebulae.astro.crafts.updaters import check_chosen

from . import sharding
from . import step as _step
from .craft import Craft

__all__: list[str] = []  # the dock binds the front optimizers to `Updater`


class LionOptim(torch.optim.Optimizer):
    """Lion (Chen et al. 2023), as optax.lion: p -= lr·(sign(b1·m + (1-b1)·g) + wd·p); m = b2·m + (1-b2)·g."""

    def __init__(self, params, lr, betas=(0.9, 0.99), weight_decay=0.0):
        super().__init__(params, {"lr": lr, "betas": betas, "weight_decay": weight_decay})

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            b1, b2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                m = self.state[p].setdefault("exp_avg", torch.zeros_like(p))
                update = (m * b1 + p.grad * (1 - b1)).sign_()
                if group["weight_decay"]:
                    update.add_(p, alpha=group["weight_decay"])
                p.add_(update, alpha=-group["lr"])
                m.mul_(b2).add_(p.grad, alpha=1 - b2)


class LambOptim(torch.optim.Optimizer):
    """LAMB (You et al. 2020) as optax.lamb: bias-corrected Adam, decoupled decay, layer-wise trust ratio."""

    def __init__(self, params, lr, betas=(0.9, 0.999), eps=1e-6, weight_decay=0.0):
        super().__init__(params, {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay})

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            b1, b2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(p)
                    state["exp_avg_sq"] = torch.zeros_like(p)
                state["step"] += 1
                m, v = state["exp_avg"], state["exp_avg_sq"]
                m.mul_(b1).add_(p.grad, alpha=1 - b1)
                v.mul_(b2).addcmul_(p.grad, p.grad, value=1 - b2)
                m_hat = m / (1 - b1 ** state["step"])
                v_hat = v / (1 - b2 ** state["step"])
                update = m_hat / (v_hat.sqrt() + group["eps"])
                if group["weight_decay"]:
                    update.add_(p, alpha=group["weight_decay"])
                p_norm, u_norm = p.norm(), update.norm()
                trust = torch.where((p_norm > 0) & (u_norm > 0), p_norm / u_norm, torch.ones_like(p_norm))
                p.add_(update * trust, alpha=-group["lr"])


def _build(conf: optconf.OptConf, params: list[torch.nn.Parameter]) -> torch.optim.Optimizer:
    a, lr, wd = conf.args, conf.lr, conf.wd
    name = conf.algorithm
    if name in ("Momentum", "Nesterov"):
        return torch.optim.SGD(params, lr=lr, momentum=a["mmnt"], nesterov=name == "Nesterov", weight_decay=wd)
    if name == "RMSProp":
        return torch.optim.RMSprop(params, lr=lr, alpha=a["alpha"], eps=a["eps"], momentum=a["mmnt"], weight_decay=wd)
    if name == "Adam":
        return torch.optim.Adam(params, lr=lr, betas=(a["mmnt1"], a["mmnt2"]), eps=a["eps"], weight_decay=wd)
    if name == "AdamW":
        return torch.optim.AdamW(params, lr=lr, betas=(a["mmnt1"], a["mmnt2"]), eps=a["eps"], weight_decay=wd)
    if name == "Lion":
        return LionOptim(params, lr=lr, betas=(a["mmnt1"], a["mmnt2"]), weight_decay=wd)
    if name == "Adadelta":
        return torch.optim.Adadelta(params, lr=lr, rho=a["rho"], eps=a["eps"], weight_decay=wd)
    if name == "Adagrad":
        init = a["initial_accumulator_value"]
        return torch.optim.Adagrad(params, lr=lr, weight_decay=wd, initial_accumulator_value=init, eps=a["eps"])
    return LambOptim(params, lr=lr, betas=(a["mmnt1"], a["mmnt2"]), eps=a["eps"], weight_decay=wd)


def _nonfinite(tensors: list[torch.Tensor]) -> torch.Tensor:
    """A device flag: whether any of `tensors` holds a NaN or an inf, from their sums (a NaN or inf makes the sum
    non-finite; a float32 sum beyond 3.4e38 also counts); read-only, no sync, one cheap reduction per tensor."""
    if not tensors:
        return torch.zeros((), dtype=torch.bool)
    device = tensors[0].device
    bad = ~torch.stack([sharding.local(t).sum(dtype=torch.float32).to(device) for t in tensors]).isfinite().all()
    if any(sharding.is_sharded(t) for t in tensors):  # each rank saw its own shards: any rank's flag counts
        bad = bad.to(torch.int32)
        torch.distributed.all_reduce(bad, op=torch.distributed.ReduceOp.MAX)
        bad = bad.bool()
    return bad


_live: weakref.WeakSet = weakref.WeakSet()  # every attached Updater, for `repoint`


def repoint(replaced: dict[int, torch.nn.Parameter]) -> None:
    """Point every optimizer holding a replaced parameter (`replaced`: id of the old one -> the new one) at the new
    ones (FSDP2 replaces a craft's parameters when it shards them)."""
    for updater in list(_live):
        if any(id(p) in replaced for p in updater._params):
            updater._repoint(replaced)


class Updater(Craft):
    """The torch side of an optimizer (nebulae.astro.crafts.updaters.OptimizerEngine): eager gradients, torch.optim."""

    def attach(self, hull: Craft) -> None:
        object.__setattr__(self, "_hull", hull)  # not registered: the hull's weights keep their own paths
        named = [(k.replace(".", "/"), p) for k, p in hull.named_parameters()]
        chosen = [p for k, p in named if statedict.within(k, self.conf.update_scope)]
        check_chosen(self, hull, chosen)
        self._params = chosen
        self._optim = _build(self.conf, chosen)
        self._sharded = any(sharding.is_sharded(p) for p in chosen)
        _live.add(self)
        device = chosen[0].device.type
        self._scaler = torch.amp.GradScaler(
            device,
            init_scale=optconf.SCALER["init"],
            enabled=self.conf.mixp,
            growth_interval=optconf.SCALER["interval"],
        )
        self._index = {id(p): j for j, p in enumerate(chosen)}
        self._acc: list[torch.Tensor | None] = [None] * len(chosen)  # this optimizer's own accumulated gradients
        self._calls = 0
        self._updates = 0
        self._skipped = 0
        self._bad: torch.Tensor | None = None  # a device flag: a non-finite loss in this grad_accum cycle

    def _repoint(self, replaced: dict[int, torch.nn.Parameter]) -> None:
        if self._calls or self._optim.state:
            raise RuntimeError(
                f"{type(self).__name__}: its craft was sharded (Multiverse(shard='params')) after it had trained; "
                "call mv.sync(craft) before the first step"
            )
        chosen = [replaced.get(id(p), p) for p in self._params]
        self._params = chosen
        self._optim = _build(self.conf, chosen)
        self._sharded = any(sharding.is_sharded(p) for p in chosen)
        self._index = {id(p): j for j, p in enumerate(chosen)}

    def check_call(self) -> None:
        pass  # torch: optz(loss) outside a step differentiates and updates at once

    def record(self, loss: torch.Tensor) -> None:
        if not isinstance(loss, torch.Tensor) or loss.ndim != 0:
            shape = tuple(loss.shape) if isinstance(loss, torch.Tensor) else type(loss).__name__
            raise ValueError(f"optz(loss) needs a scalar loss, got shape {shape}")
        call = _step.current()
        if call is not None:  # inside a step: differentiated and applied when its run returns
            call.objective(self, loss)
            return
        self.differentiate(loss)
        self.update()

    def differentiate(self, loss: torch.Tensor, retain_graph: bool = False) -> None:
        """Add the gradient of `loss` (/ grad_accum, scaled under mixp) w.r.t. this optimizer's parameters only."""
        if not loss.requires_grad:
            raise RuntimeError(
                f"{type(self).__name__}(loss): the loss does not depend on any parameter with gradients "
                "(was it computed under a Nozzle, or from detached values?)"
            )
        k = self.conf.grad_accum
        scaled = self._scaler.scale(loss / k) if self.conf.mixp else loss / k
        own = [p for p in self._params if p.requires_grad]
        held = [p.grad for p in own]  # gradients someone else left: not ours, restored after
        for p in own:
            p.grad = None
        if self._sharded:  # FSDP2 reduce-scatters into the sharded parameters, which are not in the graph themselves
            scaled.backward(retain_graph=retain_graph)
        else:
            scaled.backward(inputs=own, retain_graph=retain_graph)
        grads = []
        for p, before in zip(own, held):
            g, p.grad = p.grad, before
            grads.append(g)
        self._check_finite(loss, [g for g in grads if g is not None])
        index = self._index
        for p, g in zip(own, grads):
            if g is not None:
                j = index[id(p)]
                self._acc[j] = g if self._acc[j] is None else self._acc[j].add_(g)

    def _check_finite(self, loss: torch.Tensor, grads: list[torch.Tensor]) -> None:
        """nonfinite='raise': raise now (one host read); 'skip': note a non-finite loss on the device (no sync)."""
        mode = self.conf.nonfinite
        if mode == "ignore":
            return
        bad = ~torch.isfinite(loss.detach())
        if mode == "raise":
            if not self.conf.mixp:
                bad = bad | _nonfinite(grads)
            if bad.item():  # nothing of this call is kept: the state is as before it
                raise FloatingPointError(
                    optconf.nonfinite_error(type(self).__name__, self._calls + 1, self._updates + 1)
                )
        elif not self.conf.mixp:  # under mixp the loss scaler decides from the gradients
            self._bad = bad if self._bad is None else self._bad | bad

    def update(self) -> None:
        """Count one call; every `grad_accum` calls apply the accumulated gradient (unscale, clip, rate, step)."""
        self._calls += 1
        if self._calls % self.conf.grad_accum:
            return
        if self.conf.nonfinite == "skip" and not self.conf.mixp:
            acc = [g for g in self._acc if g is not None]
            bad = _nonfinite(acc) if self._bad is None else self._bad | _nonfinite(acc)
            self._bad = None
            if bad.item():  # one host read per update (torch.optim steps on the host)
                self._acc = [None] * len(self._params)
                self._skipped += 1
                return
        held = [p.grad for p in self._params]
        for p, g in zip(self._params, self._acc):  # a parameter the loss did not reach gets a zero gradient (as on JAX)
            p.grad = g if g is not None else torch.zeros_like(p)
        self._acc = [None] * len(self._params)
        rate = self.conf.rate(self._updates)
        for group in self._optim.param_groups:
            group["lr"] = rate
        if self.conf.mixp:
            self._scaler.unscale_(self._optim)
        if self.conf.grad_limit > 0:
            torch.nn.utils.clip_grad_norm_(self._params, self.conf.grad_limit)
        skipped = False
        if self.conf.mixp:
            before = self._scaler.get_scale()
            self._scaler.step(self._optim)
            self._scaler.update()
            skipped = self._scaler.get_scale() < before
        else:
            self._optim.step()
        for p, g in zip(self._params, held):
            p.grad = g
        self._updates += 0 if skipped else 1
        self._skipped += 1 if skipped else 0

    @property
    def updates(self) -> int:
        return self._updates

    @property
    def skipped(self) -> int:
        return self._skipped

    @property
    def loss_scale(self) -> float:
        return float(self._scaler.get_scale()) if self.conf.mixp else 1.0

    def get_extra_state(self) -> dict:
        # the grad_accum accumulator and the cycle's non-finite flag too: a resume mid-cycle is exact (as on JAX)
        return {
            "optim": self._optim.state_dict(),
            "scaler": self._scaler.state_dict(),
            "calls": self._calls,
            "updates": self._updates,
            "skipped": self._skipped,
            "acc": list(self._acc),
            "bad": self._bad,
        }

    def set_extra_state(self, state: dict) -> None:
        self._optim.load_state_dict(state["optim"])
        if state.get("scaler"):
            self._scaler.load_state_dict(state["scaler"])
        self._calls, self._updates = int(state["calls"]), int(state["updates"])
        self._skipped = int(state.get("skipped", 0))
        acc = state.get("acc")  # None in anchors written before it was saved: the cycle restarts empty
        if acc is None or len(acc) != len(self._params):
            acc = [None] * len(self._params)
        self._acc = [None if g is None else g.to(p.device, p.dtype, copy=True) for g, p in zip(acc, self._params)]
        bad = state.get("bad")
        self._bad = None if bad is None else bad.to(self._params[0].device, copy=True)
