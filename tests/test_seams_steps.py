"""Step seams between the engines: gradients per optimizer, Prober, failed steps, host arrays.

Each test runs on the bound engine (both passes) and compares with plain torch autograd/torch.optim,
so the two engines are held to the same reference.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nebulae.astro import checks
from tests.conftest import assert_close

RNG = np.random.default_rng(7)
W1, B1 = RNG.normal(size=(3, 4)).astype(np.float32), RNG.normal(size=3).astype(np.float32)
W2, B2 = RNG.normal(size=(1, 3)).astype(np.float32), RNG.normal(size=1).astype(np.float32)
XS = [RNG.normal(size=(6, 4)).astype(np.float32) for _ in range(4)]
NOISE = [RNG.normal(size=(6, 4)).astype(np.float32) for _ in range(4)]


def _players(dock):
    """G: Dense(4, 4)-like map of noise to samples; D: Dense(4, 3) + Dense(3, 1) critic."""

    class D(dock.Craft):
        def __init__(self):
            super().__init__("D")
            self.fc1, self.act, self.fc2 = dock.Dense(4, 3), dock.Tanh(), dock.Dense(3, 1)

        def run(self, x):
            return self.fc2(self.act(self.fc1(x)))

    class G(dock.Craft):
        def __init__(self):
            super().__init__("G")
            self.fc = dock.Dense(4, 4)

        def run(self, z):
            return self.fc(z)

    d, g = D(), G()
    d.import_weights({"fc1/weight": W1, "fc1/bias": B1, "fc2/weight": W2, "fc2/bias": B2})
    g.import_weights({"fc/weight": np.eye(4, dtype=np.float32) * 0.5, "fc/bias": np.full(4, 0.1, np.float32)})
    return d, g


def _gan_steps(dock, d, g, lr=0.1):
    """The README's GAN pattern: one step craft per player (D then G), plain SGD."""

    class DStep(dock.Craft):
        def __init__(self):
            super().__init__("DSTEP")
            self.d, self.g = d, g
            self.optz = dock.Momentum(d, lr=lr, mmnt=0.0)
            self.stop = dock.StopGrad()

        def run(self, x, z):
            with dock.Rudder():
                fake = self.stop(self.g(z))
                loss = ((self.d(x) - 1.0) ** 2).mean() + (self.d(fake) ** 2).mean()
                self.optz(loss)
            return loss

    class GStep(dock.Craft):
        def __init__(self):
            super().__init__("GSTEP")
            self.d, self.g = d, g
            self.optz = dock.Momentum(g, lr=lr, mmnt=0.0)

        def run(self, z):
            with dock.Rudder():
                loss = ((self.d(self.g(z)) - 1.0) ** 2).mean()
                self.optz(loss)
            return loss

    return DStep(), GStep()


def _torch_gan(lr=0.1):
    """pytorch/examples' pattern: zero each player's gradients before its own backward."""
    d = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Tanh(), torch.nn.Linear(3, 1))
    g = torch.nn.Linear(4, 4)
    with torch.no_grad():
        d[0].weight.copy_(torch.from_numpy(W1)), d[0].bias.copy_(torch.from_numpy(B1))
        d[2].weight.copy_(torch.from_numpy(W2)), d[2].bias.copy_(torch.from_numpy(B2))
        g.weight.copy_(torch.eye(4) * 0.5), g.bias.fill_(0.1)
    od, og = torch.optim.SGD(d.parameters(), lr=lr), torch.optim.SGD(g.parameters(), lr=lr)
    losses = []
    for x, z in zip(XS, NOISE):
        x, z = torch.from_numpy(x), torch.from_numpy(z)
        od.zero_grad()
        ld = ((d(x) - 1.0) ** 2).mean() + (d(g(z).detach()) ** 2).mean()
        ld.backward()
        od.step()
        og.zero_grad()
        lg = ((d(g(z)) - 1.0) ** 2).mean()
        lg.backward()
        og.step()
        losses.append((ld.item(), lg.item()))
    weights = {"fc1/bias": d[0].bias, "fc2/bias": d[2].bias, "fc1/weight": d[0].weight, "g/weight": g.weight}
    return losses, {k: v.detach().numpy() for k, v in weights.items()}


def test_one_step_craft_per_player_updates_each_from_its_own_loss(dock):
    d, g = _players(dock)
    dstep, gstep = _gan_steps(dock, d, g)
    losses = []
    for x, z in zip(XS, NOISE):
        ld = dock.shell(dstep(dock.coat(x), dock.coat(z)))
        lg = dock.shell(gstep(dock.coat(z)))
        losses.append((ld, lg))
    ref_losses, ref = _torch_gan()
    assert_close(losses, ref_losses, what="per-step losses vs plain torch")
    dw, gw = d.export_weights(), g.export_weights()
    for key in ("fc1/bias", "fc2/bias", "fc1/weight"):
        assert_close(dw[key], ref[key], what=f"D {key} after 4 iterations")
    assert_close(gw["fc/weight"], ref["g/weight"], what="G weight after 4 iterations")


def _two_optimizer_net(dock):
    class Net(dock.Craft):
        def __init__(self):
            super().__init__("NET")
            self.enc, self.act, self.dec = dock.Dense(4, 3), dock.Tanh(), dock.Dense(3, 1)

        def run(self, x):
            h = self.act(self.enc(x))
            return h, self.dec(h)

    net = Net()
    net.import_weights({"enc/weight": W1, "enc/bias": B1, "dec/weight": W2, "dec/bias": B2})
    return net


@pytest.mark.parametrize("accum", [1, 2])
def test_two_optimizers_in_one_run_each_use_their_own_loss_and_accumulate_their_own(dock, accum):
    """enc follows a feature loss, dec a reconstruction loss that also reaches enc: enc must ignore it."""
    net = _two_optimizer_net(dock)

    class Step(dock.Craft):
        def __init__(self):
            super().__init__("STEP")
            self.net = net
            self.o_enc = dock.Momentum(net, lr=0.1, mmnt=0.5, update_scope="enc", grad_accum=accum)
            self.o_dec = dock.Adam(net, lr=0.05, update_scope="dec", grad_accum=accum)

        def run(self, x):
            with dock.Rudder():
                h, y = self.net(x)
                feature = (h**2).mean()
                recon = ((y - 1.0) ** 2).mean()
                self.o_enc(feature)
                self.o_dec(recon)
            return feature + recon

    step = Step()
    for x in XS:
        step(dock.coat(x))

    enc, dec = torch.nn.Linear(4, 3), torch.nn.Linear(3, 1)
    with torch.no_grad():
        enc.weight.copy_(torch.from_numpy(W1)), enc.bias.copy_(torch.from_numpy(B1))
        dec.weight.copy_(torch.from_numpy(W2)), dec.bias.copy_(torch.from_numpy(B2))
    o_enc = torch.optim.SGD(enc.parameters(), lr=0.1, momentum=0.5)
    o_dec = torch.optim.Adam(dec.parameters(), lr=0.05)
    ge, gd = [torch.zeros_like(p) for p in enc.parameters()], [torch.zeros_like(p) for p in dec.parameters()]
    for n, x in enumerate(XS, 1):
        h = torch.tanh(enc(torch.from_numpy(x)))
        feature, recon = (h**2).mean(), ((dec(h) - 1.0) ** 2).mean()
        for acc, g in zip(ge, torch.autograd.grad(feature / accum, list(enc.parameters()), retain_graph=True)):
            acc += g
        for acc, g in zip(gd, torch.autograd.grad(recon / accum, list(dec.parameters()))):
            acc += g
        if n % accum == 0:
            for opt, params, grads in ((o_enc, enc.parameters(), ge), (o_dec, dec.parameters(), gd)):
                for p, g in zip(params, grads):
                    p.grad = g.clone()
                    g.zero_()
                opt.step()
    got = net.export_weights()
    assert_close(got["enc/weight"], enc.weight.detach().numpy(), what="enc weight")
    assert_close(got["enc/bias"], enc.bias.detach().numpy(), what="enc bias")
    assert_close(got["dec/weight"], dec.weight.detach().numpy(), what="dec weight")
    assert step.o_enc.updates == step.o_dec.updates == len(XS) // accum


def _reference_grads(x):
    """d mean((D(x) - 1)^2) / d params, by torch autograd."""
    w1, b1, w2, b2 = (torch.from_numpy(a).requires_grad_(True) for a in (W1, B1, W2, B2))
    out = torch.tanh(torch.from_numpy(x) @ w1.T + b1) @ w2.T + b2
    loss = ((out - 1.0) ** 2).mean()
    g = torch.autograd.grad(loss, [w1, b1, w2, b2])
    return loss.item(), dict(zip(["fc1/weight", "fc1/bias", "fc2/weight", "fc2/bias"], (t.numpy() for t in g)))


def _critic_step(dock, d):
    class Train(dock.Craft):
        def __init__(self):
            super().__init__("TRAIN")
            self.d = d
            self.optz = dock.Adam(d, lr=0.1)
            self.ema = dock.EMA(d, decay=0.5)

        def run(self, x):
            with dock.Rudder() as rd:
                self.d.gear(rd)
                loss = ((self.d(x) - 1.0) ** 2).mean()
                self.optz(loss)
                self.ema.update()
            return loss

    class Score(dock.Craft):
        def __init__(self):
            super().__init__("SCORE")
            self.d = d

        def run(self, x):
            return ((self.d(x) - 1.0) ** 2).mean()

    return Train(), Score()


@pytest.mark.parametrize("which", ["score", "train"])
def test_prober_without_wrt_gives_parameter_gradients_and_changes_nothing(dock, which):
    d, _ = _players(dock)
    train, score = _critic_step(dock, d)
    step = train if which == "train" else score
    before = d.export_weights()
    with dock.Prober() as pb:
        loss = step(dock.coat(XS[0]))
    ref_loss, ref = _reference_grads(XS[0])
    assert_close(dock.shell(loss), ref_loss, what="probed loss")
    assert pb.grads["inputs"] == {}
    params = {k.split("/", 1)[1]: dock.shell(v) for k, v in pb.grads["params"].items()}
    assert sorted(params) == sorted(ref)
    for k in ref:
        assert_close(params[k], ref[k], what=f"d loss / d {k}")
    after = d.export_weights()
    for k in before:
        np.testing.assert_array_equal(after[k], before[k], err_msg=f"{k} changed under Prober")
    assert train.optz.updates == 0
    np.testing.assert_array_equal(dock.shell(train.ema.shadow()["fc1/weight"]), before["fc1/weight"])
    loss = train(dock.coat(XS[0]))  # the state is intact: training goes on
    assert train.optz.updates == 1 and np.isfinite(dock.shell(loss))


def test_prober_with_wrt_around_a_train_step_gives_input_gradients_and_applies_nothing(dock):
    d, _ = _players(dock)
    train, _ = _critic_step(dock, d)
    before = d.export_weights()
    with dock.Prober(wrt=(0,)) as pb:
        train(dock.coat(XS[1]))
    x = torch.from_numpy(XS[1]).requires_grad_(True)
    out = torch.tanh(x @ torch.from_numpy(W1).T + torch.from_numpy(B1)) @ torch.from_numpy(W2).T + torch.from_numpy(B2)
    (dx,) = torch.autograd.grad(((out - 1.0) ** 2).mean(), [x])
    assert_close(dock.shell(pb.grads["inputs"][0]), dx.numpy(), what="d loss / d x")
    for k, v in d.export_weights().items():
        np.testing.assert_array_equal(v, before[k], err_msg=f"{k} changed under Prober")
    assert train.optz.updates == 0


def test_prober_needs_a_scalar_step_output_on_both_engines(dock):
    d, _ = _players(dock)
    with pytest.raises(ValueError, match="Prober needs the step to return a scalar"), dock.Prober():
        d(dock.coat(XS[0]))
    assert np.all(np.isfinite(d.export_weights()["fc1/weight"]))


def test_prober_takes_a_one_element_output_as_the_scalar_and_names_a_bad_wrt_on_both_engines(dock):
    d, _ = _players(dock)
    one = XS[0][:1]  # D maps one sample to shape (1, 1): one number, the scalar to differentiate
    with dock.Prober(wrt=0) as pb:
        d(dock.coat(one))
    x = torch.from_numpy(one).requires_grad_(True)
    out = torch.tanh(x @ torch.from_numpy(W1).T + torch.from_numpy(B1)) @ torch.from_numpy(W2).T + torch.from_numpy(B2)
    (dx,) = torch.autograd.grad(out.sum(), [x])
    assert_close(dock.shell(pb.grads["inputs"][0]), dx.numpy(), what="d out / d x")
    bad = r"Prober\(wrt=\(1,\)\): positional argument 1 is not an array \(only 1"
    with pytest.raises(TypeError, match=bad), dock.Prober(wrt=1):
        d(dock.coat(one))


def test_a_step_that_raises_while_tracing_leaves_the_state_intact(dock):
    d, _ = _players(dock)

    class Bad(dock.Craft):
        def __init__(self):
            super().__init__("BAD")
            self.d = d
            self.optz = dock.Adam(d, lr=0.1)

        def run(self, x):
            with dock.Rudder():
                loss = self.d(x).mean()
                self.optz(loss)
                if x.shape[0] == 6:
                    raise ValueError("a bug in run")
            return loss

    bad = Bad()
    before = d.export_weights()
    with pytest.raises(ValueError, match="a bug in run"):
        bad(dock.coat(XS[0]))
    for k, v in d.export_weights().items():
        np.testing.assert_array_equal(v, before[k], err_msg=f"{k} after a failed step")
    assert bad.optz.updates == 0
    bad(dock.coat(XS[0][:5]))  # the same craft still trains
    assert bad.optz.updates == 1


def test_a_failed_value_check_inside_a_step_raises_and_updates_nothing(dock, engine):
    """A run-time failure: a value check (checkify on JAX) fails inside the compiled step."""
    from nebulae import law

    kernel = __import__(f"{law.backend().__name__}.checks", fromlist=["check"])
    d, _ = _players(dock)

    class Checked(dock.Craft):
        def __init__(self):
            super().__init__("CHECKED")
            self.d = d
            self.optz = dock.Momentum(d, lr=0.1, mmnt=0.0)

        def run(self, x):
            with dock.Rudder():
                y = self.d(x)
                kernel.check((x < 100.0).all(), "{craft}: input {value} too large", craft="CHECKED", value=x.max())
                loss = y.mean()
                self.optz(loss)
            return loss

    step = Checked()
    checks.enable(True)
    try:
        step(dock.coat(XS[0]))
        before = d.export_weights()
        with pytest.raises(ValueError, match=r"^CHECKED: input \S+ too large$"):
            step(dock.coat(XS[0] * 1e4))
    finally:
        checks.enable(False)
    for k, v in d.export_weights().items():  # the failed step updated nothing, on both engines
        np.testing.assert_array_equal(v, before[k], err_msg=k)
    assert step.optz.updates == 1
    step(dock.coat(XS[1]))
    assert step.optz.updates >= 2


def test_jax_a_host_callback_that_raises_while_the_step_runs_leaves_the_state_intact(dock, engine):
    if engine != "jax":
        pytest.skip("host callbacks inside a compiled step exist on JAX only")
    import jax

    d, _ = _players(dock)

    def fail(v):
        if float(v) > 0:
            raise RuntimeError("host side failure")

    class Calls(dock.Craft):
        def __init__(self):
            super().__init__("CALLS")
            self.d = d
            self.optz = dock.Momentum(d, lr=0.1, mmnt=0.0)

        def run(self, x, flag):
            with dock.Rudder():
                jax.debug.callback(fail, flag)
                loss = self.d(x).mean()
                self.optz(loss)
            return loss

    step = Calls()
    step(dock.coat(XS[0]), np.float32(0))
    before = d.export_weights()
    with pytest.raises(Exception, match="host side failure"):
        step(dock.coat(XS[0]), np.float32(1))
        jax.effects_barrier()
    for k, v in d.export_weights().items():
        np.testing.assert_array_equal(v, before[k])
    step(dock.coat(XS[0]), np.float32(0))
    assert step.traces == 1 and step.optz.updates == 2


def test_numpy_arguments_of_a_top_level_call_are_coated_on_both_engines(dock):
    d, _ = _players(dock)
    from_numpy = dock.shell(d(XS[2]))
    from_coat = dock.shell(d(dock.coat(XS[2])))
    np.testing.assert_array_equal(from_numpy, from_coat)
    train, _ = _critic_step(dock, d)
    assert np.isfinite(dock.shell(train(XS[2])))


@pytest.mark.parametrize("what", ["coat", "shell"])
def test_coat_and_shell_inside_a_step_are_refused_with_the_same_message(dock, what):
    class Noisy(dock.Craft):
        def __init__(self):
            super().__init__("NOISY")

        def run(self, x):
            if what == "coat":
                return x + dock.coat(np.random.rand(*x.shape).astype(np.float32))
            return dock.shell(x)

    with pytest.raises(RuntimeError, match=rf"^{what}\(\) was called inside a step's run; host transfers are refused"):
        Noisy()(dock.coat(XS[0]))
