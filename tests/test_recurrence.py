"""The fused recurrence (custom autograd Function, hand-written BPTT) against autograd and the eager loop."""

import os
from pathlib import Path

import pytest
import torch

import sca2lstm
from sca2lstm.models.recurrence import DualRecurrence, run_recurrence
from sca2lstm.models.sca2lstm import SCA2LSTM
from tolerance import assert_scaled_close, recurrence_tol, sum_tol


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny tensors gain nothing from threads, and on a shared machine OpenMP waits can cost seconds."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


# ----------------------------------------------------------------------------- the Function alone
def _tiny_inputs(dtype=torch.float64):
    """B=2, T=5, N=3, H1=3, H2=4 with missing features, one all-missing step and unknown obs."""
    g = torch.Generator().manual_seed(0)
    B, T, N, H1, H2 = 2, 5, 3, 3, 4

    def r(*shape, scale=1.0):
        return (torch.randn(*shape, generator=g, dtype=dtype) * scale).requires_grad_()

    miss = torch.zeros(B, T, N, dtype=torch.bool)
    miss[0, 1, 0] = True
    miss[0, 3, 1:] = True
    miss[1, 2, :] = True                                      # all features missing at one step
    x = torch.randn(B, T, N, generator=g, dtype=dtype).masked_fill(miss, 0.0)
    q = torch.randn(B, T, generator=g, dtype=dtype)
    q[0, 2] = q[1, 0] = float("nan")                           # unknown observations
    mask = (torch.rand(B, T, H2, generator=g, dtype=dtype) > 0.3).to(dtype) / 0.7
    params = [r(B, T, 4 * H1), r(B, 4 * H2), r(4 * H1, H1 + H2 + 2, scale=0.5), r(N, H1), r(N),
              r(4 * H2, N + H1 + H2, scale=0.5), r(1, H2), r(1), r(1, H2)]       # last: the cell readout
    return params, _constants(x, miss, q), mask


def _constants(x, miss, q):
    """The loop's constant inputs (x, neg, keep, obs0, known) from features, missing flags and targets."""
    all_miss = miss.all(-1, keepdim=True)
    neg = torch.zeros_like(x).masked_fill(miss & ~all_miss, float("-inf"))
    known = torch.isfinite(q)
    return x, neg, (~all_miss).to(x.dtype), torch.where(known, q, torch.zeros_like(q)), known.to(x.dtype)


@pytest.mark.parametrize("lead", [0, 1])
@pytest.mark.parametrize("dropout, cell", [(False, True), (True, True), (True, False)])
def test_gradcheck(lead, dropout, cell):
    params, (x, neg, keep, obs0, known), mask = _tiny_inputs()
    mask = mask if dropout else None
    params = params if cell else params[:-1] + [None]
    pred, _, _ = DualRecurrence.apply(*params, x, neg, keep, obs0, known, mask, lead, None)
    fed = pred.detach()

    # The fed-back prediction is a constant input to later steps (detached): gradcheck perturbs the
    # inputs, so it must hold the fed-back values fixed to see that function.
    def f(*p):
        return DualRecurrence.apply(*p, x, neg, keep, obs0, known, mask, lead, fed)[:2]

    pred_fixed, w = f(*params)
    # Bit-equal by construction: the same loop, fed (p - obs) * known built before it or p * known - obs * known
    # built in it; known is 0 or 1, so both round once, alike (a product by 1 or 0 is exact).
    assert torch.equal(pred_fixed, pred)
    # Both outputs (pred and weights). The full Jacobian for the richest case, the randomised fast
    # mode (a few directional derivatives) for the others, to keep the suite quick.
    assert torch.autograd.gradcheck(f, params, fast_mode=not (lead and dropout and cell))
    assert torch.all(w[1, 2] == 0) and torch.all(w[0, 1, 0] == 0) and torch.all(w[0, 3, 1:] == 0)


def test_forward_matches_no_grad_loop():
    params, consts, mask = _tiny_inputs()
    a = DualRecurrence.apply(*params, *consts, mask, 1, None)
    b = run_recurrence(*params, *consts, mask, 1)
    # bit-equal by construction: the same loop on the same inputs; saving only keeps what its steps write
    assert all(torch.equal(u, v) for u, v in zip(a, b))


# ----------------------------------------------------------------------------- against the eager loop
def _small_model(dropout=0.0, seed=0, cell_readout=True):
    cfg = sca2lstm.load_config().replace(
        model={"hidden_size": 12, "attention_hidden_size": 6, "embedding_size": 4, "dropout": dropout,
               "cell_readout": cell_readout})
    torch.manual_seed(seed)
    model = SCA2LSTM(cfg)
    if cell_readout:  # it starts at 0; nonzero here, so that the comparisons see its forward part too
        with torch.no_grad():
            model.cell_head.weight.normal_(0.0, 0.3)
    return model


def _tol(model, batch, dtype=torch.float32):
    """The float32 bound (tests/tolerance.py) for this model and batch: T steps, widest dot product."""
    n, h1, h2 = model.n_features, model.h1_size, model.h2_size
    return recurrence_tol(dtype, batch[0].shape[1], max(4 * h2, n + h1 + h2, 4 * h1))


def _batch(model, B=3, T=24, seed=1):
    g = torch.Generator().manual_seed(seed)
    N, S = model.n_features, model.n_static
    miss = torch.rand(B, T, N, generator=g) < 0.2
    miss[0, 7] = True                                          # all-missing steps
    miss[2, 15:17] = True
    x = torch.randn(B, T, N, generator=g).masked_fill(miss, 0.0)
    stm = torch.rand(B, S, generator=g) < 0.2
    st = torch.randn(B, S, generator=g).masked_fill(stm, 0.0)
    q = torch.randn(B, T, generator=g)
    q[torch.rand(B, T, generator=g) < 0.25] = float("nan")
    return x, miss, st, stm, q


def _loss_and_grads(model, batch, fused, q_obs=True):
    model.use_fused_recurrence = fused
    model.zero_grad(set_to_none=True)
    x, miss, st, stm, q = batch
    pred, w, qs = model(x, miss, st, stm, q_obs=q if q_obs else None, return_weights=True, return_quantiles=True)
    ok = torch.isfinite(q)
    g = torch.Generator().manual_seed(5)
    # the loss also uses the weights and the quantiles, so their own gradient paths are checked too
    loss = ((pred - torch.where(ok, q, 0.0)) ** 2 * ok).sum() / ok.sum() \
        + (w * torch.randn(w.shape, generator=g).to(w.device)).sum() \
        + (qs * torch.randn(qs.shape, generator=g).to(qs.device)).sum()
    loss.backward()
    return pred.detach(), w.detach(), {n: p.grad for n, p in model.named_parameters()}


@pytest.mark.parametrize("frozen, q_obs, cell", [((), True, True), ((), False, True), ((), True, False),
                                                 (("embedding", "lstm1", "weight_head"), True, True),
                                                 (("embedding", "lstm1", "weight_head", "lstm2"), True, True)])
def test_fused_matches_reference(frozen, q_obs, cell):
    model = _small_model(cell_readout=cell)
    assert (model.cell_head is not None) == cell
    assert model.lead == 1                                     # residual feedback is on
    for grp in frozen:
        for p in model.group_parameters(grp):
            p.requires_grad_(False)
    batch = _batch(model)
    p_ref, w_ref, g_ref = _loss_and_grads(model, batch, fused=False, q_obs=q_obs)
    p_fast, w_fast, g_fast = _loss_and_grads(model, batch, fused=True, q_obs=q_obs)
    tol = _tol(model, batch)
    assert_scaled_close(p_fast, p_ref, tol, "pred")
    assert_scaled_close(w_fast, w_ref, tol, "weights")
    frozen_names = {f"{grp}." for grp in frozen}
    for name, g in g_ref.items():
        if any(name.startswith(f) for f in frozen_names):
            assert g is None and g_fast[name] is None, name
        else:
            assert g is not None and torch.isfinite(g_fast[name]).all(), name
            assert_scaled_close(g_fast[name], g, tol, name)


def test_fused_matches_reference_float64():
    """In float64 the fused Function and the eager model agree to float64 rounding: the float32 bound
    above is rounding, not a hidden difference of the two paths."""
    model = _small_model().double()
    batch = [t.double() if t.is_floating_point() else t for t in _batch(model)]
    ref = _loss_and_grads(model, batch, fused=False)
    fast = _loss_and_grads(model, batch, fused=True)
    tol = _tol(model, batch, torch.float64)
    for a, b, what in zip(fast[:2], ref[:2], ("pred", "weights")):
        assert_scaled_close(a, b, tol, what)
    for name, g in ref[2].items():
        assert_scaled_close(fast[2][name], g, tol, name)


def test_weights_semantics_and_inference_path():
    model = _small_model().eval()
    x, miss, st, stm, q = _batch(model)
    with torch.no_grad():
        pred, w = model(x, miss, st, stm, q_obs=q, return_weights=True)
        model.use_fused_recurrence = False
        pred_ref = model(x, miss, st, stm, q_obs=q)
    assert_scaled_close(pred, pred_ref, _tol(model, (x,)), "pred")
    assert torch.isfinite(pred).all() and torch.isfinite(w).all()
    assert torch.all(w[miss] == 0)
    all_miss = miss.all(-1)
    assert torch.all(w[all_miss] == 0)
    torch.testing.assert_close(w.sum(-1)[~all_miss], torch.ones(int((~all_miss).sum())), rtol=0,
                               atol=sum_tol(w.dtype, w.shape[-1]))


def test_path_selection():
    model = _small_model()
    x, miss, st, stm, q = _batch(model, T=10)
    assert model(x, miss, st, stm, q_obs=q).grad_fn.name() == "DualRecurrenceBackward"
    # gradients with respect to the inputs: only the eager loop provides them
    xg = x.clone().requires_grad_()
    model(xg, miss, st, stm, q_obs=q).sum().backward()
    assert xg.grad is not None and torch.isfinite(xg.grad).all()
    # autocast: the eager loop
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(x, miss, st, stm, q_obs=q)
    assert out.grad_fn.name() != "DualRecurrenceBackward"


def test_dropout_deterministic():
    model = _small_model(dropout=0.3).train()
    batch = _batch(model)

    def grads(seed):
        torch.manual_seed(seed)
        return _loss_and_grads(model, batch, fused=True)[2]

    a, b, c = grads(7), grads(7), grads(8)
    assert all(torch.equal(a[n], b[n]) for n in a)
    assert not torch.equal(a["lstm2.rec.weight"], c["lstm2.rec.weight"])   # the mask is drawn
    model.eval()                                                           # no mask in eval mode
    d = _loss_and_grads(model, batch, fused=True)[2]
    e = _loss_and_grads(model, batch, fused=False)[2]
    for n in d:
        assert_scaled_close(d[n], e[n], _tol(model, batch), n)


def test_persistence_skip_fused_matches_reference_and_adds_last_observation():
    cfg = sca2lstm.load_config().replace(
        model={"hidden_size": 12, "attention_hidden_size": 6, "embedding_size": 4, "dropout": 0.0,
               "persistence_skip": True})
    torch.manual_seed(0)
    model = SCA2LSTM(cfg)
    batch = _batch(model)
    p_ref, w_ref, g_ref = _loss_and_grads(model, batch, fused=False)
    p_fast, w_fast, g_fast = _loss_and_grads(model, batch, fused=True)
    tol = _tol(model, batch)
    assert_scaled_close(p_fast, p_ref, tol, "pred")
    for name, g in g_ref.items():
        assert_scaled_close(g_fast[name], g, tol, name)
    # With a zero head, the forecast is exactly the last observation (0 where it is unknown).
    x, miss, st, stm, q = batch
    with torch.no_grad():
        model.predict_head.weight.zero_()
        model.predict_head.bias.zero_()
    model.eval()
    for fused in (True, False):
        model.use_fused_recurrence = fused
        with torch.no_grad():
            pred = model(x, miss, st, stm, q_obs=q)
        expected = torch.zeros_like(q)
        expected[:, 1:] = torch.nan_to_num(q[:, :-1])
        torch.testing.assert_close(pred, expected, rtol=0, atol=1e-6)


# ----------------------------------------------------------------------------- the C++ loops
def _sized_inputs(B, T, N, H1, H2, dtype, seed=3):
    g = torch.Generator().manual_seed(seed)

    def r(*shape, scale=0.5):
        return (torch.randn(*shape, generator=g, dtype=dtype) * scale).requires_grad_()

    miss = torch.rand(B, T, N, generator=g) < 0.15
    miss[0, 4] = True                                          # an all-missing step
    x = torch.randn(B, T, N, generator=g, dtype=dtype).masked_fill(miss, 0.0)
    q = torch.randn(B, T, generator=g, dtype=dtype)
    q[torch.rand(B, T, generator=g) < 0.2] = float("nan")
    mask = (torch.rand(B, T, H2, generator=g, dtype=dtype) > 0.2).to(dtype) / 0.8
    params = [r(B, T, 4 * H1), r(B, 4 * H2), r(4 * H1, H1 + H2 + 2, scale=0.3), r(N, H1), r(N),
              r(4 * H2, N + H1 + H2, scale=0.3), r(1, H2), r(1), r(1, H2, scale=0.1)]
    # (The cell readout starts at 0 in the model; small here, as in training. At full scale the float64
    # C++ loops pass gradcheck: test_native_gradcheck.)
    return params, _constants(x, miss, q), mask


def _run_impl(impl, params, consts, mask, lead, base=None):
    for p in params:
        p.grad = None
    pred, w, _ = DualRecurrence.apply(*params, *consts, mask, lead, None, base, impl)
    g = torch.Generator().manual_seed(9)
    (pred.square().sum() + (w * torch.randn(w.shape, generator=g, dtype=torch.float64).to(w.dtype)).sum()).backward()
    return [pred.detach(), w.detach()] + [p.grad.clone() for p in params]


def _as(params, consts, mask, dtype):
    """The same inputs in another dtype (fresh leaves for the parameters)."""
    return ([p.detach().to(dtype).requires_grad_() for p in params], [c.to(dtype) for c in consts],
            mask.to(dtype))


@pytest.mark.parametrize("B, threads", [(3, 1), pytest.param(37, 2, marks=pytest.mark.slow),
                                        pytest.param(64, 2, marks=pytest.mark.slow)])
@pytest.mark.parametrize("lead, dropout, skip", [(1, True, False), (0, False, False), (1, False, True)])
def test_native_matches_python_loops(B, threads, lead, dropout, skip):
    """Model-sized states (the C++ products' 4 x 16 tiles and their edges; rows split over threads):
    forward values, weights and every gradient agree with the Python loops.

    float64: both loops on the same inputs agree to float64 rounding (C++ double uses plain loops and
    the standard library's exp/tanh). float32 (the C++ tiles, vector exp/tanh that training runs):
    each loop is compared with the float64 answer for the very same (float32-rounded) inputs, within
    the bound the arithmetic allows (tests/tolerance.py), so the check does not depend on the order
    in which this CPU sums.
    """
    torch.set_num_threads(threads)
    T, N, H1, H2 = 40, 11, 32, 64
    width = max(4 * H2, N + H1 + H2)          # the widest dot product (BPTT through lstm2's gates)
    params, consts, mask = _as(*_sized_inputs(B, T, N, H1, H2, torch.float32), torch.float32)
    params64, consts64, mask64 = _as(params, consts, mask, torch.float64)

    def run(impl, p, c, m):
        return _run_impl(impl, p, c, m if dropout else None, lead, c[3] * 0.5 if skip else None)

    truth = run("python", params64, consts64, mask64)
    tol64, tol32 = recurrence_tol(torch.float64, T, width), recurrence_tol(torch.float32, T, width)
    for i, (a, b) in enumerate(zip(run("native", params64, consts64, mask64), truth)):
        assert_scaled_close(a, b, tol64, f"float64 output {i}")
    for impl in ("native", "python"):
        for i, (a, b) in enumerate(zip(run(impl, params, consts, mask), truth)):
            assert_scaled_close(a, b, tol32, f"float32 {impl} output {i}")
    nograd = [run_recurrence(*[p.detach() for p in params], *consts, mask if dropout else None, lead,
                             base=consts[3] * 0.5 if skip else None, impl=impl) for impl in ("native", "python")]
    for a, b in zip(*nograd):
        assert_scaled_close(a, b, 2 * tol32, "no-grad loops")   # each within tol32 of the truth


@pytest.mark.parametrize("lead", [0, 1])
def test_native_gradcheck(lead):
    params, (x, neg, keep, obs0, known), mask = _tiny_inputs()
    pred = DualRecurrence.apply(*params, x, neg, keep, obs0, known, mask, lead, None, None, "native")[0]

    def f(*p):
        return DualRecurrence.apply(*p, x, neg, keep, obs0, known, mask, lead, pred.detach(), None, "native")[:2]

    assert torch.autograd.gradcheck(f, params)


def test_native_setting(monkeypatch):
    from sca2lstm.errors import ConfigError
    from sca2lstm.models import native

    monkeypatch.setenv("SCA2LSTM_NATIVE", "yes")
    with pytest.raises(ConfigError, match="SCA2LSTM_NATIVE='yes'.*auto, 0, 1"):
        native.get()
    monkeypatch.setenv("SCA2LSTM_NATIVE", "0")
    assert native.get() is None
    params, consts, mask = _tiny_inputs(torch.float32)
    with pytest.raises(RuntimeError, match="not available"):
        run_recurrence(*params, *consts, mask, 1, impl="native")
    pred, _, _ = run_recurrence(*params, *consts, mask, 1)    # auto: the Python loops
    assert torch.isfinite(pred).all()
    # disabled(): the Python loops inside the block, the previous setting (set or unset) after it
    monkeypatch.setenv("SCA2LSTM_NATIVE", "auto")
    with native.disabled():
        assert native.get() is None
    assert os.environ["SCA2LSTM_NATIVE"] == "auto"
    monkeypatch.delenv("SCA2LSTM_NATIVE")
    with native.disabled():
        assert os.environ["SCA2LSTM_NATIVE"] == "0"
    assert "SCA2LSTM_NATIVE" not in os.environ


def test_native_build_failure(monkeypatch, caplog, tmp_path):
    """No compiler: `auto` logs one warning with the compiler's reason and runs the Python loops;
    SCA2LSTM_NATIVE=1 makes it an error."""
    from torch.utils import cpp_extension

    from sca2lstm.errors import TrainingError
    from sca2lstm.models import native

    def broken(**kw):
        raise RuntimeError("Error building extension 'x'\nfoo.cpp:1: error: no compiler here\nmore")

    monkeypatch.setattr(cpp_extension, "load", broken)
    monkeypatch.setattr(native, "_loaded", {})
    monkeypatch.setenv("SCA2LSTM_NATIVE_DIR", str(tmp_path))  # nothing built there: the build is tried
    monkeypatch.setenv("SCA2LSTM_NATIVE", "auto")
    with caplog.at_level("WARNING", logger="sca2lstm"):
        assert native.get() is None
    assert "foo.cpp:1: error: no compiler here" in caplog.text
    monkeypatch.setenv("SCA2LSTM_NATIVE", "1")
    with pytest.raises(TrainingError, match="no compiler here"):
        native.get()


def test_native_builds_from_one_path_whatever_the_checkout(monkeypatch, tmp_path):
    """Two checkouts sharing the cache compile the same source path (else ninja rebuilds whenever the
    other checkout built last), and the copy is written once: a newer mtime would also rebuild."""
    from torch.utils import cpp_extension

    from sca2lstm.models import native

    calls = []
    monkeypatch.setattr(cpp_extension, "load", lambda **kw: calls.append(kw) or "module")
    monkeypatch.setenv("SCA2LSTM_NATIVE_DIR", str(tmp_path / "cache"))
    text = native.SOURCE.read_bytes()
    for checkout in ("a", "b", "a"):
        src = tmp_path / checkout / native.SOURCE.name
        src.parent.mkdir(exist_ok=True)
        src.write_bytes(text)
        monkeypatch.setattr(native, "SOURCE", src)
        assert native._build(required=True) == "module"
    paths = {kw["sources"][0] for kw in calls}
    assert len(calls) == 3 and len(paths) == 1
    built = Path(paths.pop())
    assert built.parent == Path(calls[0]["build_directory"]) and built.read_bytes() == text
    assert str(tmp_path / "cache") in str(built)
    mtime = built.stat().st_mtime_ns
    native._build(required=True)
    assert built.stat().st_mtime_ns == mtime
    assert not list(built.parent.glob("*.tmp"))


def test_a_built_native_module_loads_without_the_build_tools(monkeypatch, tmp_path):
    """Once built, the module is imported directly: no compiler or ninja run at each start (which also made
    two virtual environments sharing the cache rebuild it after each other); a broken file is rebuilt."""
    from torch.utils import cpp_extension

    from sca2lstm.models import native

    if native.setting() == "0" or native.get() is None:
        pytest.skip("the C++ recurrence is switched off or cannot be built here")

    def no_build(*a, **k):
        raise AssertionError("cpp_extension.load was called for a module already built")

    monkeypatch.setattr(cpp_extension, "load", no_build)
    monkeypatch.setattr(native, "_loaded", {})
    module = native.get()
    assert module.__name__ == native.module_name(native.compile_flags())
    params, consts, mask = _tiny_inputs(torch.float32)
    with torch.no_grad():
        assert torch.isfinite(run_recurrence(*params, *consts, mask, 1, impl="native")[0]).all()
    broken = tmp_path / "broken.so"
    broken.write_bytes(b"not an ELF file")
    assert native._load_built("broken", broken) is None
    assert native._load_built("absent", tmp_path / "absent.so") is None


def test_a_build_killed_half_way_does_not_hold_up_the_next_run(monkeypatch, caplog, tmp_path):
    """A process killed while compiling (terminal closed, `kill`) leaves cpp_extension's lock file behind, and
    cpp_extension waits for that file to go before loading: every later run waited forever under "compiling the
    C++ recurrence ... about a minute". The next build removes the leftover (one warning) and builds."""
    from torch.utils import cpp_extension

    from sca2lstm.models import native

    monkeypatch.setenv("SCA2LSTM_NATIVE_DIR", str(tmp_path))
    folder = tmp_path / native.module_name(native.compile_flags())
    folder.mkdir()
    (folder / "lock").touch()                        # what the killed build left

    def load(build_directory, **kw):
        # cpp_extension.load's own rule: while its lock file exists another process is building; wait for it.
        assert not (Path(build_directory) / "lock").exists(), "would wait forever on a lock nobody holds"
        return "module"

    monkeypatch.setattr(cpp_extension, "load", load)
    with caplog.at_level("WARNING", logger="sca2lstm"):
        assert native._build(required=True) == "module"
    assert "stopped half-way" in caplog.text


def test_a_build_under_way_in_another_process_is_waited_for_and_not_redone(monkeypatch, tmp_path):
    """The lock that clears a leftover must not clear a live build's: while another process holds the build
    folder, the run waits (its lock file kept), then loads what that process built instead of building again."""
    import threading

    from torch.utils import cpp_extension

    from sca2lstm.models import native

    pytest.importorskip("fcntl")
    monkeypatch.setenv("SCA2LSTM_NATIVE_DIR", str(tmp_path))
    name = native.module_name(native.compile_flags())
    folder = tmp_path / name
    folder.mkdir()
    built = folder / f"{name}.so"
    monkeypatch.setattr(native, "_load_built", lambda n, path: "module" if path.exists() else None)
    monkeypatch.setattr(cpp_extension, "load", lambda **kw: pytest.fail("built again"))
    result = []
    with native._build_lock(folder):                 # the other process, building (a new open file: its own lock)
        (folder / "lock").touch()
        waiting = threading.Thread(target=lambda: result.append(native._build(required=True)))
        waiting.start()
        waiting.join(0.5)
        assert waiting.is_alive() and (folder / "lock").exists()
        built.touch()                                # its build ends
        (folder / "lock").unlink()
    waiting.join(10)
    assert result == ["module"]


def test_a_build_folder_on_a_file_system_without_locks_still_builds(monkeypatch, tmp_path):
    """Some network shares refuse flock (ENOLCK): the build goes on under cpp_extension's own lock, as before,
    rather than falling back to the Python loops; a lock file there is then not taken for a leftover."""
    import fcntl

    from torch.utils import cpp_extension

    from sca2lstm.models import native

    def no_locks(fd, op):
        raise OSError(37, "No locks available")

    monkeypatch.setattr(fcntl, "flock", no_locks)
    monkeypatch.setenv("SCA2LSTM_NATIVE_DIR", str(tmp_path))
    monkeypatch.setattr(cpp_extension, "load", lambda **kw: "module")
    assert native._build(required=True) == "module"
