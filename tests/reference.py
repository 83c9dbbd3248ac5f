"""Independent numpy references for the quantized operators (no bmxnet code is used here)."""
import numpy as np


def quantize_act(x, bits):
    """sign (sign(0)=+1) / DoReFa k-bit activations / identity, in float32."""
    x = np.asarray(x, np.float32)
    if bits == 1:
        return np.where(x >= 0, np.float32(1), np.float32(-1))
    if bits == 32:
        return x.copy()
    n = np.float32(2 ** bits - 1)
    return (np.rint(n * np.clip(x, 0, 1)) / n).astype(np.float32)


def quantize_weight(w, bits):
    """sign / DoReFa k-bit weights (max |tanh| over the whole tensor) / identity, in float32."""
    w = np.asarray(w, np.float32)
    if bits == 1:
        return np.where(w >= 0, np.float32(1), np.float32(-1))
    if bits == 32:
        return w.copy()
    t = np.tanh(w)
    m = np.float32(np.abs(t).max())
    n = np.float32(2 ** bits - 1)
    v = t / (np.float32(2) * (m if m > 0 else np.float32(1))) + np.float32(0.5)
    return (np.float32(2) * (np.rint(n * v) / n) - np.float32(1)).astype(np.float32)


def channel_scale(w):
    """mean |W| per output channel: sequential float64 sum (cumsum), one rounding to float32."""
    flat = np.abs(np.asarray(w, np.float32).reshape(w.shape[0], -1)).astype(np.float64)
    return (np.cumsum(flat, axis=1)[:, -1] / flat.shape[1]).astype(np.float32)


def _out_size(size, k, pad, stride, dilate):
    return (size + 2 * pad - dilate * (k - 1) - 1) // stride + 1


def im2col(x, kernel, stride, pad, dilate, pad_fill=0.0):
    """x (C, H, W) -> cols (C*kh*kw, OH*OW) in (c, i, j) row order."""
    C, H, W = x.shape
    kh, kw = kernel
    OH = _out_size(H, kh, pad[0], stride[0], dilate[0])
    OW = _out_size(W, kw, pad[1], stride[1], dilate[1])
    xp = np.full((C, H + 2 * pad[0], W + 2 * pad[1]), pad_fill, np.float64)
    xp[:, pad[0]:pad[0] + H, pad[1]:pad[1] + W] = x
    cols = np.empty((C, kh, kw, OH, OW), np.float64)
    for i in range(kh):
        for j in range(kw):
            r0, c0 = i * dilate[0], j * dilate[1]
            cols[:, i, j] = xp[:, r0:r0 + stride[0] * (OH - 1) + 1:stride[0],
                               c0:c0 + stride[1] * (OW - 1) + 1:stride[1]]
    return cols.reshape(C * kh * kw, OH * OW), (OH, OW)


def col2im(cols, shape, kernel, stride, pad, dilate):
    """Adjoint of im2col (zero fill): cols (C*kh*kw, OH*OW) -> x (C, H, W)."""
    C, H, W = shape
    kh, kw = kernel
    OH = _out_size(H, kh, pad[0], stride[0], dilate[0])
    OW = _out_size(W, kw, pad[1], stride[1], dilate[1])
    xp = np.zeros((C, H + 2 * pad[0], W + 2 * pad[1]), np.float64)
    c = cols.reshape(C, kh, kw, OH, OW)
    for i in range(kh):
        for j in range(kw):
            r0, c0 = i * dilate[0], j * dilate[1]
            xp[:, r0:r0 + stride[0] * (OH - 1) + 1:stride[0],
               c0:c0 + stride[1] * (OW - 1) + 1:stride[1]] += c[:, i, j]
    return xp[:, pad[0]:pad[0] + H, pad[1]:pad[1] + W]


def conv2d(xq, wq, stride, pad, dilate, groups, pad_fill=0.0):
    """Grouped 2-D convolution in float64 of already-quantized x (N,C,H,W) and w (O,C/g,kh,kw)."""
    N, C = xq.shape[:2]
    O, Cg, kh, kw = wq.shape
    Og = O // groups
    out = None
    for n in range(N):
        for g in range(groups):
            cols, (OH, OW) = im2col(xq[n, g * Cg:(g + 1) * Cg], (kh, kw), stride, pad, dilate,
                                    pad_fill)
            if out is None:
                out = np.zeros((N, O, OH, OW), np.float64)
            wg = wq[g * Og:(g + 1) * Og].reshape(Og, -1).astype(np.float64)
            out[n, g * Og:(g + 1) * Og] = (wg @ cols).reshape(Og, OH, OW)
    return out


def conv2d_grads(xq, wq, dy, stride, pad, dilate, groups, pad_fill=0.0):
    """(dXq, dWq) of sum(dy * conv2d(xq, wq)) in float64."""
    N, C, H, W = xq.shape
    O, Cg, kh, kw = wq.shape
    Og = O // groups
    dx = np.zeros(xq.shape, np.float64)
    dw = np.zeros(wq.shape, np.float64)
    for n in range(N):
        for g in range(groups):
            cols, _ = im2col(xq[n, g * Cg:(g + 1) * Cg], (kh, kw), stride, pad, dilate, pad_fill)
            dyg = dy[n, g * Og:(g + 1) * Og].reshape(Og, -1).astype(np.float64)
            dw[g * Og:(g + 1) * Og] += (dyg @ cols.T).reshape(Og, Cg, kh, kw)
            wg = wq[g * Og:(g + 1) * Og].reshape(Og, -1).astype(np.float64)
            dx[n, g * Cg:(g + 1) * Cg] = col2im(wg.T @ dyg, (Cg, H, W), (kh, kw), stride, pad,
                                                dilate)
    return dx, dw


def ste(x, grad, cancel):
    """Straight-through estimator mask: grad where |x| <= cancel, else 0."""
    return np.where(np.abs(x) <= cancel, grad, 0)
