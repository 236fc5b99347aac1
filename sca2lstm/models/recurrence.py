"""Fast recurrence of SCA2LSTM: the per-step loop of both cells as one autograd Function.

The eager loop in :mod:`sca2lstm.models.sca2lstm` records ~30 small autograd nodes per step; at
T = 270 steps the cost of a training step is almost all per-op overhead (graph bookkeeping and
Python), not arithmetic. :class:`DualRecurrence` runs the same loop with autograd off, each step
writing what the backward needs into preallocated time-major buffers, and does backpropagation
through time by hand:

* the reverse loop carries only the state gradients (dh1, dc1, dh2, dc2) with ~17 ops per step; all
  activation-derivative factors are computed for every step at once before it;
* every weight gradient is one large product over all steps after it
  (e.g. dW1 = dG1^T @ Z1 with Z1 = [h1(t-1), h2(t-1), residual(t)] for all t);
* the prediction head's contribution dpred * Wp is added for every step at once; with the cell
  readout, dpred * Wc reaches c2(t) directly.

The maths is the model's (see its docstring). Gate order in each 4H block is [input, forget,
output, cell]. Per step t::

    z1 = [h1, h2, res(t)]            g1 = g1_pre(t) + z1 @ W1^T      -> h1, c1   (LSTM1)
    w  = softmax(h1 @ Wa^T + ba + neg(t)) * keep(t)                            (weight head)
    z2 = [N * w * x(t), h1, h2]      g2 = g2_pre + z2 @ W2^T         -> h2, c2   (LSTM2)
    pred(t) = (h2 * mask(t)) @ Wp^T + bp [+ (c2 * mask(t)) @ Wc^T]             (head, dropout mask)
    res(t + L) = [(pred(t) - obs(t)) * known(t), known(t)]   (pred detached: no gradient path)

:func:`run_recurrence` is the forward loop alone, also the inference path under ``torch.no_grad()``.

**Two implementations of the two sequential loops.** Even at ~20 ops per step, Python's per-call
overhead (5-20 us each) dominates tensors of 32 x 64. On the CPU the loops therefore run by default in
C++ (``recurrence_native.cpp``, built on first use by :mod:`sca2lstm.models.native`): plain loops for
the element-wise work, small register-tiled products, and the batch rows split across torch's threads
(rows never interact inside the recurrence, so no step needs a synchronisation). The Python loops
below (:func:`_loop_python`, :func:`_bptt_python`) are the reference the C++ must match
(tests/test_recurrence.py), and run on CUDA, with ``SCA2LSTM_NATIVE=0``, or where no compiler is found.
Everything outside the loops (buffers, weight gradients) is shared by both.
"""

from __future__ import annotations

import torch
from torch.autograd.function import once_differentiable

from . import native


def _cell_backward_factors(s: torch.Tensor, g: torch.Tensor, c: torch.Tensor, tc: torch.Tensor):
    """Per-step factors of an LSTM cell's backward, for all steps at once.

    ``s`` [T, B, 3H] holds sigmoid(i, f, o), ``g`` [T, B, H] the tanh cell input, ``c`` [T+1, B, H]
    the cell states with c[0] the initial one, ``tc`` [T, B, H] = tanh(c[1:]). With dh the gradient
    reaching h(t) and dc_next the one reaching c(t) from step t+1:

        dc      = dc_next + dh * a                      a = o (1 - tanh(c)^2)
        dgates  = [dc, dc, dh, dc] * b                  b = [g i(1-i), c_prev f(1-f), tanh(c) o(1-o), i(1-g^2)]
        dc_prev = dc * f

    Written with in-place ops into two buffers: on the CPU, each fresh [T, B, H] temporary costs more
    (page faults) than the arithmetic.
    """
    T, B, H = tc.shape
    b = s.new_empty(T, B, 4 * H)
    b3, bg = b[..., :3 * H], b[..., 3 * H:]
    for k, u in enumerate((g, c[:-1], tc)):
        b[..., k * H:(k + 1) * H].copy_(u)
    b3.mul_(s).addcmul_(b3, s, value=-1)                     # X s - X s^2 = X s (1 - s)
    i, o = s[..., :H], s[..., 2 * H:]
    torch.mul(g, g, out=bg).mul_(i)
    torch.sub(i, bg, out=bg)                                 # i - i g^2
    a = torch.mul(tc, tc).mul_(o)
    torch.sub(o, a, out=a)                                   # o - o tanh(c)^2
    return a, b


def run_recurrence(g1_pre, g2_pre, w1, wa, ba, w2, wp, bp, wc, x, neg, keep, obs0=None, known=None,
                   mask=None, lead: int = 0, fed_back=None, base=None, save: bool = False,
                   impl: str = "auto"):
    """Run the dual-LSTM loop without autograd bookkeeping.

    Parameters
    ----------
    g1_pre : Tensor [B, T, 4*H1]
        LSTM1 input projection (with bias) for every step.
    g2_pre : Tensor [B, 4*H2]
        LSTM2 static projection (with bias).
    w1 : Tensor [4*H1, H1 + H2 + 2]
    wa, ba : Tensor [N, H1], [N]
    w2 : Tensor [4*H2, N + H1 + H2]
    wp, bp : Tensor [1, H2], [1]
    wc : Tensor [1, H2] or None
        The cell readout: the head also reads LSTM2's cell state, (c2 * mask) @ wc^T. None: h2 only.
    x : Tensor [B, T, N]
    neg : Tensor [B, T, N]
        0, or -inf on missing features of steps that are not all-missing.
    keep : Tensor [B, T, 1]
        0 on all-missing steps, else 1.
    obs0, known : Tensor [B, T], optional
        Observed target (0 where unknown) and 1/0 flags, for the residual feedback of step t + lead.
    mask : Tensor [B, T, H2], optional
        Dropout mask (already scaled) on h2 before the prediction head.
    lead : int
        Residual feedback delay; 0 (or obs0 None) disables it.
    fed_back : Tensor [B, T], optional
        Predictions to feed back instead of the loop's own. The loop's prediction is a constant
        input to later steps (no gradient path), so a gradient check, which perturbs the inputs,
        must hold the fed-back values fixed to see the same function; the model never passes it.
    base : Tensor [B, T], optional
        A constant added to every prediction (the persistence skip: the last known observation), so
        the head forecasts the change. No gradient flows through it.
    save : bool
        Also return the stacked per-step tensors the backward needs.
    impl : {"auto", "native", "python"}
        Which loop runs: the compiled one (:mod:`sca2lstm.models.native`), the Python one, or
        ``auto``: the compiled one on the CPU when it is available.

    Returns
    -------
    pred [B, T], weights [B, T, N], h2 [B, T, H2] (LSTM2's state before the dropout mask: the
    quantile head's input) and, if ``save``, a dict of time-major [T, B, ...] buffers.
    """
    B, T, N = x.shape
    H2 = w2.shape[0] // 4
    use_res = lead > 0 and obs0 is not None and lead < T
    online = use_res and fed_back is None
    nat = _native_module(impl, x)
    with torch.no_grad():
        w1t, wat, w2t, wpt = w1.t(), wa.t(), w2.t(), wp.t()
        # N * x, and 0 on all-missing steps: the weighted input s * xk then equals N * w * x with
        # w = s * keep, so the keep mask is applied to the weights once, after the loop.
        xk = x * (keep * N)
        negb = neg + ba                      # weight-head logits' mask and bias, added once
        # Residual-feedback inputs [r(t), known flag(t)] of LSTM1, time-major.
        res = x.new_zeros(T, B, 2)
        if use_res:
            res[lead:, :, 1] = known.t()[:T - lead]
            if fed_back is not None:
                res[lead:, :, 0] = ((fed_back - obs0) * known).t()[:T - lead]
        wcv = None if wc is None else wc.reshape(-1)
        loop = (g1_pre, g2_pre, w1t, wat, w2t, wpt, bp, wcv, xk, negb, res, obs0, known, mask, base, lead,
                online, save)
        wts, h2all, preds, buf = _loop_native(nat, *loop) if nat is not None else _loop_python(*loop)
        # The head's input (h2 after the dropout mask): for the predictions when the loop made none (only
        # the Python loop without feedback and without the cell readout), and for the backward.
        hd = None
        if preds is None or save:
            hd = h2all if mask is None else h2all * mask.transpose(0, 1)
        if preds is None:
            preds = torch.addmm(bp, hd.view(T * B, H2), wpt)
            if base is not None:
                preds += base.t().reshape(T * B, 1)
        pred = preds.view(T, B).t().contiguous()
        wts.mul_(keep.transpose(0, 1))
        weights = wts.transpose(0, 1).contiguous()
        h2 = h2all.transpose(0, 1).contiguous()  # a copy: h2all may be saved for the backward (hd)
    if not save:
        return pred, weights, h2
    buf.update(wts=wts, xk=xk, hd=hd)
    return pred, weights, h2, buf


def _native_module(impl: str, x: torch.Tensor):
    if impl not in ("auto", "native", "python"):
        raise ValueError(f"impl={impl!r}; expected 'auto', 'native' or 'python'")
    if impl == "python" or x.device.type != "cpu":
        if impl == "native":
            raise ValueError(f"the compiled recurrence runs on the CPU only, not {x.device.type}")
        return None
    mod = native.get()
    if mod is None and impl == "native":
        raise RuntimeError("the compiled recurrence is not available (see SCA2LSTM_NATIVE)")
    return mod


def _loop_native(nat, g1_pre, g2_pre, w1t, wat, w2t, wpt, bp, wcv, xk, negb, res, obs0, known, mask, base,
                 lead, online, save):
    """The loop in C++ (``recurrence_native.cpp``): the same arguments, maths and buffers as
    :func:`_loop_python`."""
    empty = xk.new_empty(0)

    def tm(t):  # time-major and contiguous, or empty
        return empty if t is None else t.transpose(0, 1).contiguous()

    out = nat.forward(tm(g1_pre), g2_pre.contiguous(), w1t.contiguous(), wat.contiguous(),
                      tm(negb), w2t.contiguous(), wpt.reshape(-1).contiguous(), bp.reshape(1).contiguous(),
                      empty if wcv is None else wcv.contiguous(), tm(xk), res,
                      tm(-(obs0 * known)) if online else empty, tm(known) if online else empty,
                      tm(mask), tm(base), lead, online, save)
    wts, h2all, preds = out[:3]
    buf = dict(zip(("z1", "z2", "s1", "g1", "c1", "tc1", "s2", "g2", "c2", "tc2"), out[3:])) if save else None
    return wts, h2all, preds.unsqueeze(-1), buf


def _loop_python(g1_pre, g2_pre, w1t, wat, w2t, wpt, bp, wcv, xk, negb, res, obs0, known, mask, base, lead,
                 online, save):
    """The loop in Python: time-major buffers [T, B, ...] that each step writes in place."""
    B, T, N = xk.shape
    H1, H2 = w1t.shape[1] // 4, w2t.shape[1] // 4
    g1p, negb, xkv = g1_pre.unbind(1), negb.unbind(1), xk.unbind(1)
    resv = res.unbind(0)
    # The head runs inside the loop when its prediction is fed back, or when it reads c2 (not kept
    # for all steps without ``save``).
    in_loop = online or wcv is not None
    if online:
        kt = known.t().unsqueeze(-1)                           # [T, B, 1]
        nobsk, knv = (-(obs0.t().unsqueeze(-1) * kt)).unbind(0), kt.unbind(0)
        resr = res[:, :, :1].unbind(0)
    if in_loop:
        wcol = None if wcv is None else wcv.unsqueeze(1)       # [H2, 1]
        preds = xk.new_empty(T, B, 1)
        pv = preds.unbind(0)
        maskv = mask.unbind(1) if mask is not None else None
        basev = base.t().unsqueeze(-1).unbind(0) if base is not None else None
    split1, split2 = (3 * H1, H1), (3 * H2, H2)
    # Time-major buffers: each step writes its rows (contiguous) in place. What only the backward
    # needs is not kept without ``save`` (out=None: fresh per-step tensors, dropped at once).
    new = xk.new_empty
    wts, h2all = new(T, B, N), new(T, B, H2)
    wv, h2v = wts.unbind(0), h2all.unbind(0)
    if save:
        K1, K2 = H1 + H2 + 2, N + H1 + H2
        buf = dict(z1=new(T, B, K1), z2=new(T, B, K2), s1=new(T, B, 3 * H1), g1=new(T, B, H1),
                   tc1=new(T, B, H1), c1=xk.new_zeros(T + 1, B, H1), s2=new(T, B, 3 * H2),
                   g2=new(T, B, H2), tc2=new(T, B, H2), c2=xk.new_zeros(T + 1, B, H2))
        z1v, z2v, s1v, g1v, tc1v, s2v, g2v, tc2v = (
            buf[k].unbind(0) for k in ("z1", "z2", "s1", "g1", "tc1", "s2", "g2", "tc2"))
        c1v, c2v = buf["c1"][1:].unbind(0), buf["c2"][1:].unbind(0)
    else:
        z1v = z2v = s1v = g1v = tc1v = c1v = s2v = g2v = tc2v = c2v = [None] * T

    h1, h2 = xk.new_zeros(B, H1), xk.new_zeros(B, H2)
    c1, c2 = torch.zeros_like(h1), torch.zeros_like(h2)
    for t in range(T):
        # LSTM1 on [h1, h2, residual]
        z1 = torch.cat((h1, h2, resv[t]), 1, out=z1v[t])
        gs, gc = torch.addmm(g1p[t], z1, w1t).split_with_sizes(split1, 1)
        s1, g1 = torch.sigmoid(gs, out=s1v[t]), torch.tanh(gc, out=g1v[t])
        i, f, o = s1.chunk(3, 1)
        c1 = torch.addcmul(f * c1, i, g1, out=c1v[t])
        h1 = o * torch.tanh(c1, out=tc1v[t])
        # masked softmax (keep applied after the loop) and LSTM2 on [N w x, h1, h2]
        sm = torch.softmax(torch.addmm(negb[t], h1, wat), 1, out=wv[t])
        z2 = torch.cat((sm * xkv[t], h1, h2), 1, out=z2v[t])
        gs, gc = torch.addmm(g2_pre, z2, w2t).split_with_sizes(split2, 1)
        s2, g2 = torch.sigmoid(gs, out=s2v[t]), torch.tanh(gc, out=g2v[t])
        i, f, o = s2.chunk(3, 1)
        c2 = torch.addcmul(f * c2, i, g2, out=c2v[t])
        h2 = torch.mul(o, torch.tanh(c2, out=tc2v[t]), out=h2v[t])
        if in_loop:
            # the prediction (fed back at t + lead when online; the returned one, too)
            p = torch.addmm(bp, h2 if maskv is None else h2 * maskv[t], wpt, out=pv[t])
            if wcol is not None:
                p.addmm_(c2 if maskv is None else c2 * maskv[t], wcol)
            if basev is not None:
                p.add_(basev[t])
            if online and t + lead < T:
                torch.addcmul(nobsk[t], p, knv[t], out=resr[t + lead])
    return wts, h2all, (preds if in_loop else None), (buf if save else None)


def _bptt_python(s1, g1, c1, tc1, s2, g2, c2, tc2, wts, wx, dweights, dp, wp, wc, mask, w1, w2, wa):
    """Backpropagation through time in Python: returns dG1 [T, B, 4*H1], dG2 [T, B, 4*H2] and the
    weight-head logit gradients dA [T, B, N] (see :func:`_cell_backward_factors` for the cell maths)."""
    T, B, N = wts.shape
    H1, H2 = w1.shape[0] // 4, w2.shape[0] // 4
    K2 = N + H1 + H2
    # Everything off the sequential path, for all steps at once.
    a1, b1 = _cell_backward_factors(s1, g1, c1, tc1)
    a2, b2 = _cell_backward_factors(s2, g2, c2, tc2)
    mask_t = mask.transpose(0, 1) if mask is not None else None
    # pad[t] holds dh2_head(t-1) = dpred(t-1) * Wp (* mask) in its h2 columns, so the product
    # dG2(t) @ W2 also adds the prediction head's part of dh2(t-1).
    pad = wts.new_zeros(T, B, K2)
    head = torch.mul(dp[:-1].unsqueeze(-1), wp.view(H2), out=pad[1:, :, N + H1:])
    dh2 = dp[T - 1].unsqueeze(-1) * wp.view(H2)
    if mask_t is not None:
        head.mul_(mask_t[:-1])
        dh2 = dh2 * mask_t[T - 1]
    dww = (dweights.transpose(0, 1) * wts).unbind(0) if dweights is not None else None
    # The cell readout's direct part of dc2(t): dpred(t) * Wc (* mask), for all steps at once.
    dcr = None
    if wc is not None:
        dcr = dp.unsqueeze(-1) * wc.view(H2)
        if mask_t is not None:
            dcr.mul_(mask_t)
        dcr = dcr.unbind(0)
    w1h1, w1h2 = w1[:, :H1], w1[:, H1:H1 + H2]
    dg1, dg2, da = wts.new_empty(T, B, 4 * H1), wts.new_empty(T, B, 4 * H2), wts.new_empty(T, B, N)

    a1v, b1v, a2v, b2v = a1.unbind(0), b1.unbind(0), a2.unbind(0), b2.unbind(0)
    f1v, f2v = s1[..., H1:2 * H1].unbind(0), s2[..., H2:2 * H2].unbind(0)
    padv, wxv, wv = pad.unbind(0), wx.unbind(0), wts.unbind(0)
    dg1v, dg2v, dav = dg1.unbind(0), dg2.unbind(0), da.unbind(0)

    split_z2 = (N, H1, H2)
    dc1 = dc2 = dh1c = None
    for t in range(T - 1, -1, -1):
        # LSTM2 at t
        dc2 = dh2 * a2v[t] if dc2 is None else torch.addcmul(dc2, dh2, a2v[t])
        if dcr is not None:
            dc2.add_(dcr[t])                                 # dc2 is this step's own tensor
        gr2 = torch.mul(torch.cat((dc2, dc2, dh2, dc2), 1), b2v[t], out=dg2v[t])
        dzx, dzh1, dzh2 = torch.addmm(padv[t], gr2, w2).split_with_sizes(split_z2, 1)
        # masked softmax: da = w (dw - sum(w dw)) with dw = N x dz2_x (+ the weights' own grad)
        p = dzx * wxv[t] if dww is None else torch.addcmul(dww[t], dzx, wxv[t])
        d_a = torch.addcmul(p, wv[t], p.sum(1, keepdim=True), value=-1, out=dav[t])
        # LSTM1 at t
        dh1 = torch.addmm(dzh1, d_a, wa)
        if dh1c is not None:
            dh1 += dh1c
        dc1 = dh1 * a1v[t] if dc1 is None else torch.addcmul(dc1, dh1, a1v[t])
        gr1 = torch.mul(torch.cat((dc1, dc1, dh1, dc1), 1), b1v[t], out=dg1v[t])
        if t == 0:
            break
        # carries to step t-1
        dc1 = dc1 * f1v[t]
        dc2 = dc2 * f2v[t]
        dh1c = torch.mm(gr1, w1h1)
        dh2 = torch.addmm(dzh2, gr1, w1h2)
    return dg1, dg2, da


class DualRecurrence(torch.autograd.Function):
    """The recurrence as one autograd node; see the module docstring.

    ``apply(g1_pre, g2_pre, w1, wa, ba, w2, wp, bp, wc, x, neg, keep, obs0, known, mask, lead, fed_back,
    base, impl)`` (arguments as in :func:`run_recurrence`, all positional) returns
    ``(pred [B, T], weights [B, T, N], h2 [B, T, H2])``; h2 is a non-differentiable output (the
    quantile head reads it detached). Gradients flow to the first nine inputs only; x, neg, keep,
    obs0, known, mask and fed_back are constants (the fed-back prediction is detached, as in the model).
    """

    @staticmethod
    def forward(ctx, g1_pre, g2_pre, w1, wa, ba, w2, wp, bp, wc, x, neg, keep, obs0, known, mask, lead,
                fed_back, base=None, impl="auto"):
        # Chosen once: the backward must run the same implementation as the forward.
        ctx.native = _native_module(impl, x)
        impl = "python" if ctx.native is None else "native"
        pred, weights, h2, buf = run_recurrence(g1_pre, g2_pre, w1, wa, ba, w2, wp, bp, wc, x, neg, keep,
                                            obs0, known, mask, lead, fed_back, base, save=True, impl=impl)
        ctx.set_materialize_grads(False)
        ctx.save_for_backward(w1, wa, w2, wp, wc, mask, *(buf[k] for k in _SAVED))
        ctx.mark_non_differentiable(h2)
        return pred, weights, h2

    @staticmethod
    @once_differentiable
    def backward(ctx, dpred, dweights, dh2=None):
        w1, wa, w2, wp, wc, mask, z1, z2, s1, g1, c1, tc1, s2, g2, c2, tc2, wts, xk, hd = ctx.saved_tensors
        need = ctx.needs_input_grad
        grads = [None] * 19
        if dpred is None and dweights is None:
            return tuple(grads)
        T, B, N = wts.shape
        H1, H2 = w1.shape[0] // 4, w2.shape[0] // 4
        K2 = N + H1 + H2
        dp = dpred.t() if dpred is not None else wts.new_zeros(T, B)      # [T, B]
        # prediction head
        if need[6]:
            grads[6] = dp.reshape(1, T * B) @ hd.reshape(T * B, H2)
        if need[7]:
            grads[7] = dp.sum().reshape(1)
        if need[8]:
            cm = c2[1:] if mask is None else c2[1:] * mask.transpose(0, 1)
            grads[8] = dp.reshape(1, T * B) @ cm.reshape(T * B, H2)
        if not any(need[:6]):
            return tuple(grads)

        wx = wts * xk.transpose(0, 1)
        if ctx.native is not None:
            empty = wts.new_empty(0)
            dg1, dg2, da = ctx.native.backward(
                s1, g1, c1, tc1, s2, g2, c2, tc2, wts, wx,
                empty if dweights is None else dweights.transpose(0, 1).contiguous(), dp.contiguous(),
                wp.reshape(-1).contiguous(), empty if wc is None else wc.reshape(-1).contiguous(),
                empty if mask is None else mask.transpose(0, 1).contiguous(),
                w2.contiguous(), wa.contiguous(), w1[:, :H1 + H2].contiguous())
        else:
            dg1, dg2, da = _bptt_python(s1, g1, c1, tc1, s2, g2, c2, tc2, wts, wx, dweights, dp, wp, wc, mask,
                                        w1, w2, wa)

        # Weight gradients: one product over all steps each.
        if need[0]:
            grads[0] = dg1.transpose(0, 1)
        if need[1]:
            grads[1] = dg2.sum(0)
        if need[2]:
            grads[2] = dg1.view(T * B, 4 * H1).t() @ z1.view(T * B, -1)
        if need[3]:
            grads[3] = da.view(T * B, N).t() @ z2[..., N:N + H1].reshape(T * B, H1)
        if need[4]:
            grads[4] = da.sum((0, 1))
        if need[5]:
            grads[5] = dg2.view(T * B, 4 * H2).t() @ z2.view(T * B, K2)
        return tuple(grads)


_SAVED = ("z1", "z2", "s1", "g1", "c1", "tc1", "s2", "g2", "c2", "tc2", "wts", "xk", "hd")
