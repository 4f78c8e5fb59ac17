"""Category axis split across dask chunks: exact merges of per-chunk row states.

Two lazy stages.  ``chunk`` maps every block (rows x a slice of categories) to a
small float64 state per row; ``aggregate`` receives, for one block of rows, the
list of states of all its category chunks, merges them in chunk order (the
result does not depend on scheduling) and finishes the row value.  Only the
states (rows x a few numbers) meet in one task, never whole rows.

States, by input kind (K = categories, T = temperature):

* probabilities (KL, JS, entropy, cross-entropy): the partial row sums of the
  per-category terms, and the raw row sums (validation).  JS, entropy and
  cross-entropy reuse the compiled kernels on each chunk (their terms are >= 0,
  so a kernel's per-row clamp cannot cut a partial sum); KL terms p log(p / q)
  may be negative on a slice, so they are summed here in numpy with the kernel's
  log1p form where p ~ q.  eps / normalize: a lazy pre-pass computes the row sums
  S, then each chunk uses (x + eps) / (S + K eps) as the numpy call does.
* log-probabilities and logits: with l the raw log-probabilities (z / T for
  logits, x for log-probabilities, log x for probabilities), m the chunk's row
  maximum (0 for probabilities and unnormalized log-probabilities) and weights
  w = exp(l - m), the state of p is (m_p, s_p = sum w, a = sum w d) with the
  shifted d = s1 (l_p - m_p) - s2 (l_q - m_q), and of q (m_q, s_q).  States
  merge with the log-sum-exp rule m = max(m', m''), s = s' e^(m' - m) +
  s'' e^(m'' - m); a rescales alike and moves its shifts to the new maxima.
  Logits keep e = s - 1 (the maximum's exact 1 left out) so that log s =
  log1p(e) keeps the digits of peaked rows.  Then, with c = log s for a
  normalized input (0 otherwise): KL = a / s_p + c_q - c_p (s1 = s2 = 1),
  H = -sum p (l_p - m_p) + c_p and cross-entropy -sum p (l_q - m_q) + c_q, each
  a sum of parts >= 0.
* the f-divergences (probabilities): the partial sums of their terms (for
  Renyi: of p^alpha q^(1-alpha) - p, of p^alpha q^(1-alpha) and the
  log-sum-exp state (m, s) of its logs; of order inf the maximum of log p/q),
  with the raw row sums; finished as the kernels finish a row
  (``_numpy.rows``' forms).
* labels: the picked value from the chunk that holds the label, plus the row
  sum (probabilities, for eps / normalize) or the (m, e) state of logits:
  H = (m - z_label) + log1p(e).

Accuracy: probability inputs agree with the one-chunk (contract) path to a
relative ~1e-15 (a different summation order).  The log-space and logits
merges are accurate in absolute terms, about eps * sum_k p_k (|l_p| + |l_q|)
(measured: <= 3 eps of that scale; entropy and label cross-entropy of peaked
rows within ~12 eps relative, like the one-chunk path), but KL between nearly
equal logits rows loses its relative digits, which the one-chunk path (the
contract path, centred form) keeps: rechunk the category axis to one chunk
(``x.rechunk({axis: -1})``) for that.
"""

import numpy as np

from .._inputs.validation import check_base, sum_tolerance
from .._registry import F_DIVERGENCES, row_reduction
from .._spaces import LOG, LOGITS, PROB

__all__ = ["rows", "label_rows"]

# signs (s1, s2) of l_p and l_q in d = s1 l_p - s2 l_q
_SIGNS = {"kl": (1.0, 1.0), "h": (-1.0, 0.0), "ce": (0.0, 1.0)}

_LN2 = 0.6931471805599453
_LN2_ROUNDING = 0.6931471805599552   # _LN2 * (1 + 64 eps), as the kernels


def _letters(n):
    return "abcdefghij"[:n]


def two_stage(chunk_fn, agg_fn, arrays, n_state, dtype, extra=()):
    """Stage 1: blockwise chunk_fn(offsets_block, *blocks) -> (rows.., n_state) per chunk;
    stage 2: agg_fn(list of states) per block of rows.  `arrays` have the categories last;
    `extra` are (array, has_category_axis) inputs of batch shape (no category axis)."""
    import dask.array as da

    chunk_fn.__name__, agg_fn.__name__ = "kl_fast_chunk_states", "kl_fast_merge_states"
    batch_ndim = arrays[0].ndim - 1
    b = _letters(batch_ndim)
    k = arrays[0].shape[-1]
    cat_chunks = da.core.unify_chunks(*sum(([a, b + "k"] for a in arrays), []))[0]["k"]
    offsets = da.arange(k, chunks=(cat_chunks,))
    pairs = [offsets, "k"]
    for a in arrays:
        pairs += [a, b + "k"]
    for a in extra:
        pairs += [a, b]
    states = da.blockwise(chunk_fn, b + "k", *pairs, adjust_chunks={"k": n_state},
                          dtype=np.float64, meta=np.empty((0,) * (batch_ndim + 1)))
    return da.blockwise(agg_fn, b, states, b + "k", concatenate=False, dtype=dtype,
                        meta=np.empty((0,) * batch_ndim, dtype=dtype))


def _bad_values(x, code):
    if code == PROB:
        return ~((x >= 0) & (x < np.inf))
    if code == LOG:
        return ~(x <= 0)
    return np.isnan(x) | (x == np.inf)


_REQUIREMENT = {
    PROB: "probabilities (or counts) must be finite and >= 0",
    LOG: ("log-probabilities must be <= 0, not NaN (-inf is probability 0; a positive "
          "value is a probability above 1)"),
    LOGITS: "logits must not be NaN or +inf (-inf is probability 0)",
}


def _raise_values(name, x, code, offset):
    bad = _bad_values(x, code)
    if bad.any():
        where = np.argwhere(bad)[0]
        index = tuple(int(i) for i in where[:-1]) + (int(where[-1]) + offset,)
        raise ValueError(
            f"{name}: {_REQUIREMENT[code]}, but it holds {int(bad.sum())} bad value(s) in a "
            f"dask chunk; the first is {x[tuple(where)]!r} at (row within the block, category)"
            f" {index}")


def _raise_sums(name, sums, tol, what):
    """tol >= 0: |sum - 1| <= tol; tol < 0: sum > 0 and finite."""
    bad = ~((sums > 0) & (sums < np.inf)) if tol < 0 else ~(np.abs(sums - 1.0) <= tol)
    if bad.any():
        row = tuple(int(i) for i in np.argwhere(bad)[0])
        total = float(sums[row])
        if tol < 0:
            raise ValueError(f"{name}: the row at index {row} of its dask block has {what} "
                             f"{total!r}, so it is no distribution; give it positive finite "
                             "mass (a finite logit)")
        raise ValueError(f"{name} must sum to 1 along the category axis, but the row at index "
                         f"{row} of its dask block has {what} {total!r} (tolerance {tol:.3g});"
                         " pass normalize=True to normalize it")


def _kl_terms(p, q):
    """p log(p / q) per category in float64, with log1p((p - q) / q) where p ~ q
    (p - q is then exact), 0 where p = 0, +inf where p > 0 = q."""
    with np.errstate(all="ignore"):
        r = p / q
        near = (r >= 0.5) & (r <= 2.0)
        t = p * np.where(near, np.log1p((p - q) / q), np.log(r))
        return np.where(p == 0, 0.0, np.where(q == 0, np.inf, t))


def rows(kind, xs, codes, temperature, eps, normalize, args, dtype, tol_dtype):
    """Per-row values (lazy, `dtype`) of a row reduction whose category axis is split."""
    log_base = check_base(args.get("base"))
    validate = bool(args["validate"])
    k = xs[0].shape[-1]
    tol = sum_tolerance(tol_dtype, k, args.get("sum_tol"))
    names = ["p"] if kind == "h" else ["p", "q"]
    if kind in _F_DIVERGENCES:
        return _fdiv_rows(kind, xs, names, eps, normalize, validate, tol, args, dtype)
    if kind == "js" or not any(codes) and temperature == 1.0:
        return _prob_rows(kind, xs, names, eps, normalize, validate, tol, log_base, args, dtype)
    return _space_rows(kind, xs, names, codes, temperature, normalize, validate, tol, log_base,
                       dtype)


def _prob_rows(kind, xs, names, eps, normalize, validate, tol, log_base, args, dtype):

    import kl_fast

    k = xs[0].shape[-1]
    n_in = len(xs)
    transform = normalize or eps > 0
    # the pre-pass: row normalizers S + K eps (a lazy reduction), handed to every chunk
    norms = [x.sum(axis=-1, dtype=np.float64) + k * eps for x in xs] if transform else []
    kernel = {"js": kl_fast.js_divergence, "h": kl_fast.entropy,
              "ce": kl_fast.cross_entropy}.get(kind)
    opts = {"backend": args["backend"], "num_threads": args["num_threads"]}

    def chunk(offsets, *blocks):
        offset = int(offsets[0]) if offsets.size else 0
        # length-1 batch axes (a broadcast input) meet the full ones here, as views
        raw = np.broadcast_arrays(*(np.asarray(b, dtype=np.float64) for b in blocks[:n_in]))
        if validate:
            for name, x in zip(names, raw, strict=True):
                _raise_values(name, x, PROB, offset)
        vals = raw
        if transform:
            vals = [(x + eps) / s[..., None] for x, s in zip(raw, blocks[n_in:], strict=True)]
        if kind == "kl":
            part = _kl_terms(*vals).sum(axis=-1)
        else:
            part = np.asarray(kernel(*vals, axis=-1, validate=False, **opts), dtype=np.float64)
        sums = [x.sum(axis=-1) for x in raw]
        return np.stack([part] + sums, axis=-1)

    def aggregate(states):
        total = states[0].copy()
        for s in states[1:]:
            total += s
        if validate and not (normalize and eps > 0):
            for i, name in enumerate(names):
                _raise_sums(name, total[..., 1 + i], -1.0 if normalize else tol, "sum")
        value = total[..., 0]
        if kind == "kl":
            value = np.maximum(value, 0.0)
        elif kind == "js":
            # into [0, log 2] only where rounding left it: inf, NaN and larger values
            # (invalid input) pass unchanged, as in the kernels
            value = np.where(value < 0, 0.0, value)
            value = np.where((value > _LN2) & (value <= _LN2_ROUNDING), _LN2, value)
        return (value / log_base).astype(dtype)

    return two_stage(chunk, aggregate, xs, 1 + n_in, dtype, extra=norms)


_F_DIVERGENCES = {r.function for r in F_DIVERGENCES}


def _fdiv_rows(name, xs, names, eps, normalize, validate, tol, args, dtype):
    """An f-divergence whose category axis is split: per-chunk sums of its terms."""
    from .._numpy import rows as ref

    k = xs[0].shape[-1]
    transform = normalize or eps > 0
    norms = [x.sum(axis=-1, dtype=np.float64) + k * eps for x in xs] if transform else []
    alpha = args.get("alpha")
    if name == "renyi_divergence" and alpha == 1.0:
        return _prob_rows("kl", xs, names, eps, normalize, validate, tol,
                          check_base(args.get("base")), args, dtype)
    log_base = check_base(args.get("base"))
    # a plain sum of terms (the numpy reference's SUMS_OF_TERMS), or Renyi's states
    terms, finish_total = ref.SUMS_OF_TERMS.get(row_reduction(name).kernel, (None, None))

    def chunk(offsets, *blocks):
        offset = int(offsets[0]) if offsets.size else 0
        raw = np.broadcast_arrays(*(np.asarray(b, dtype=np.float64) for b in blocks[:2]))
        if validate:
            for x_name, x in zip(names, raw, strict=True):
                _raise_values(x_name, x, PROB, offset)
        p, q = raw
        if transform:
            p, q = ((x + eps) / s[..., None] for x, s in zip(raw, blocks[2:], strict=True))
        with np.errstate(all="ignore"):
            if terms is not None:
                parts = [terms(p, q).sum(axis=-1)]
            elif alpha == np.inf:
                parts = [ref.max_log_ratio_terms(p, q).max(axis=-1, initial=-np.inf)]
            else:
                c = 1.0 - alpha
                logs = ref.renyi_log_terms(p, q, c)
                top = logs.max(axis=-1, initial=-np.inf)
                finite = np.isfinite(top)
                shifted = np.exp(logs - np.where(finite, top, 0.0)[..., None]).sum(axis=-1)
                w = ref.renyi_terms(p, q, c, True).sum(axis=-1)
                w_lo = np.zeros_like(w)
                if alpha == 0.0:    # W as an unevaluated sum hi + lo, exact (order 0)
                    w, w_lo = ref.exact_zero_order_parts(p, q, w)
                parts = [w, ref.renyi_terms(p, q, c, False).sum(axis=-1), top,
                         np.where(finite, shifted, 0.0), w_lo]
        return np.stack(parts + [x.sum(axis=-1) for x in raw], axis=-1)

    def aggregate(states):
        total = states[0].copy()
        for st in states[1:]:
            if terms is not None:
                total += st
            elif alpha == np.inf:
                total[..., 0] = np.fmax(total[..., 0], st[..., 0])
                total[..., 0] = np.where(np.isnan(total[..., 0]) | np.isnan(st[..., 0]), np.nan,
                                         total[..., 0])
                total[..., 1:] += st[..., 1:]
            else:   # log-sum-exp states merge at the larger maximum
                with np.errstate(all="ignore"):
                    m = np.maximum(total[..., 2], st[..., 2])
                    ok = np.isfinite(m)
                    mm = np.where(ok, m, 0.0)
                    s1 = np.where(total[..., 3] > 0, total[..., 3] * np.exp(total[..., 2] - mm), 0)
                    s2 = np.where(st[..., 3] > 0, st[..., 3] * np.exp(st[..., 2] - mm), 0)
                total[..., 3] = np.where(ok, s1 + s2, 0.0)
                total[..., 2] = m
                # W's high parts add with their rounding error kept in the low part
                # (TwoSum): order 0's W cancels across chunks as within one
                hi, other = total[..., 0], st[..., 0]
                with np.errstate(invalid="ignore"):
                    s = hi + other
                    v = s - hi
                    err = (hi - (s - v)) + (other - v)
                total[..., 0] = s
                total[..., 4] += st[..., 4] + np.where(np.isfinite(err), err, 0.0)
                total[..., 1] += st[..., 1]
                total[..., 5:] += st[..., 5:]
        n_state = total.shape[-1]
        if validate and not (normalize and eps > 0):
            for i, x_name in enumerate(names):
                _raise_sums(x_name, total[..., n_state - 2 + i], -1.0 if normalize else tol,
                            "sum")
        with np.errstate(all="ignore"):
            if terms is not None:
                value = total[..., 0] if finish_total is None else finish_total(total[..., 0])
            elif alpha == np.inf:
                value = ref.finish_max_log_ratio(total[..., 0])
            else:
                sum_p = np.ones_like(total[..., 0]) if transform else total[..., 5]
                top, acc = total[..., 2], total[..., 3]
                log_s = np.where(np.isfinite(top), top + np.log(acc), top)
                w = total[..., 0] + total[..., 4]
                value = ref.finish_renyi(1.0 - alpha, w, total[..., 1], log_s, sum_p)
        return (value / log_base).astype(dtype)

    n_state = (1 if terms is not None or alpha == np.inf else 5) + 2
    return two_stage(chunk, aggregate, xs, n_state, dtype, extra=norms)


def _excess(w, m):
    """s - 1 for weights w = exp(l - m) of one chunk's rows, summed without the exact 1
    of the maximum (log1p(s - 1) then keeps the digits of a peaked row); -1 (s = 0)
    for a row that is all -inf."""
    if w.shape[-1] == 0:
        return np.full(w.shape[:-1], -1.0)
    rest = w.copy()
    np.put_along_axis(rest, np.argmax(w, axis=-1)[..., None], 0.0, axis=-1)
    return np.where(m == -np.inf, -1.0, rest.sum(axis=-1))


def _excess_merge(m1, e1, m2, e2):
    """Merge (m, e = s - 1) states: the part with the larger maximum keeps its exact 1."""
    m = np.maximum(m1, m2)
    with np.errstate(invalid="ignore"):
        f1 = np.where(m1 == -np.inf, 0.0, np.exp(m1 - m))
        f2 = np.where(m2 == -np.inf, 0.0, np.exp(m2 - m))
    lead1 = m1 >= m2
    e = np.where(lead1, e1 + f2 * (1.0 + e2), e2 + f1 * (1.0 + e1))
    return m, np.where(m == -np.inf, -1.0, e)


def _log_weights(x, code, temperature, normalized):
    """(l, m, w) of a chunk: raw log-probabilities l, the row shift m and weights
    w = exp(l - m) (probabilities: l = log x, m = 0, w = x)."""
    with np.errstate(all="ignore"):
        if code == PROB:
            return np.log(x), np.zeros(x.shape[:-1]), x
        lg = x / temperature if code == LOGITS else x
        if code == LOG and not normalized:
            return lg, np.zeros(x.shape[:-1]), np.exp(lg)
        m = lg.max(axis=-1) if lg.shape[-1] else np.full(lg.shape[:-1], -np.inf)
        shift = np.where(m == -np.inf, 0.0, m)
        return lg, m, np.exp(lg - shift[..., None])


def _space_rows(kind, xs, names, codes, temperature, normalize, validate, tol, log_base, dtype):
    s1, s2 = _SIGNS[kind]
    # normalize turns log-probabilities into logits (log-sum-exp normalized), as in numpy
    codes = [LOGITS if (c == LOG and normalize) else c for c in codes]
    normed = [c == LOGITS or (c == PROB and normalize) for c in codes]
    # logits states hold e = s - 1 (see _excess) instead of s
    lse = [c == LOGITS for c in codes]
    temps = [temperature if c == LOGITS else 1.0 for c in codes]
    two = len(xs) > 1

    def mass(state_s, i):
        return 1.0 + state_s if lse[i] else state_s

    def chunk(offsets, *blocks):
        offset = int(offsets[0]) if offsets.size else 0
        raw = np.broadcast_arrays(*(np.asarray(b, dtype=np.float64) for b in blocks))
        if validate:
            for name, x, c in zip(names, raw, codes, strict=True):
                _raise_values(name, x, c, offset)
        parts = [_log_weights(x, c, t, n) for x, c, t, n in zip(raw, codes, temps, normed,
                                                                 strict=True)]
        with np.errstate(all="ignore"):
            # d = s1 (l_p - m_p) - s2 (l_q - m_q): shifted by the chunk's row maxima
            # (0 for a row whose chunk is all -inf), so every part keeps its sign
            d = 0.0
            for sign, (lg, m, _) in zip((s1, -s2), parts, strict=False):
                if sign:
                    d = d + sign * (lg - np.where(m == -np.inf, 0.0, m)[..., None])
            wp = parts[0][2]
            a = np.where(wp == 0, 0.0, wp * d).sum(axis=-1)
        out = []
        for i, (_, m, w) in enumerate(parts):
            out += [m, _excess(w, m) if lse[i] else w.sum(axis=-1)]
            if i == 0:
                out.append(a)
        return np.stack(out, axis=-1)

    def merge_one(i, x, y):
        if lse[i]:
            return _excess_merge(x[0], x[1], y[0], y[1])
        return x[0], x[1] + y[1]     # m = 0: plain sums

    def merge(x, y):
        """Two states of the same rows -> one; the shifts move to the larger maxima."""
        mp, sp = merge_one(0, x[:2], y[:2])
        merged = [mp, sp, None]
        if two:
            merged += list(merge_one(1, x[3:], y[3:]))
        with np.errstate(all="ignore"):
            a = 0.0
            for st in (x, y):
                f = np.where(st[0] == -np.inf, 0.0, np.exp(st[0] - mp))
                corr = np.where(st[0] == -np.inf, 0.0, s1 * (st[0] - mp))
                if two and s2:
                    corr = corr - np.where((st[3] == -np.inf) | (merged[3] == -np.inf), 0.0,
                                           s2 * (st[3] - merged[3]))
                full = mass(st[1], 0)
                a = a + f * (st[2] + np.where(full == 0, 0.0, corr * full))
        merged[2] = a
        return merged

    def aggregate(states):
        st = [states[0][..., i] for i in range(states[0].shape[-1])]
        for s in states[1:]:
            st = merge(st, [s[..., i] for i in range(s.shape[-1])])
        if validate:
            for i, (name, c, n) in enumerate(zip(names, codes, normed, strict=True)):
                what = "probability mass" if c != PROB else "sum"
                total = mass(st[1], 0) if i == 0 else mass(st[4], 1)
                _raise_sums(name, total, -1.0 if n else tol, what)
        with np.errstate(all="ignore"):
            logs = []
            for i in range(len(xs)):
                s_i = st[1] if i == 0 else st[4]
                logs.append(np.log1p(s_i) if lse[i] else np.log(s_i) if normed[i] else 0.0)
            cq = logs[1] if two else 0.0
            sp = mass(st[1], 0)
            a = st[2]
            total_p = 1.0 if normed[0] else sp
            value = (a / sp if normed[0] else a) + (s2 * cq - s1 * logs[0]) * total_p
            if kind in ("kl", "h"):
                value = np.maximum(value, 0.0)
        return (value / log_base).astype(dtype)

    return two_stage(chunk, aggregate, xs, 3 + 2 * two, dtype)


def label_rows(labels, q, code, temperature, eps, normalize, ignore, args, dtype):
    """-log q[label] per row (lazy) with q's category axis split across chunks."""
    log_base = check_base(args["base"])
    validate = bool(args["validate"])
    k = q.shape[-1]
    transform = code == PROB and (normalize or eps > 0)
    has_ignore = ignore is not None
    ignore = int(ignore) if has_ignore else 0
    t = temperature if code == LOGITS else 1.0

    def chunk(offsets, q_blk, lab):
        offset = int(offsets[0]) if offsets.size else 0
        x = np.asarray(q_blk, dtype=np.float64)
        lab = np.asarray(lab, dtype=np.int64)
        skip = (lab == ignore) if has_ignore else np.zeros(lab.shape, bool)
        out_of_range = ~skip & ((lab < 0) | (lab >= k))
        if out_of_range.any():
            where = tuple(int(i) for i in np.argwhere(out_of_range)[0])
            raise ValueError(
                f"p holds {int(out_of_range.sum())} label(s) outside [0, {k}) for q's {k} "
                f"categories in a dask block; the first is {int(lab[where])} at index {where} "
                "of the block. Labels must index the category axis of q (use ignore_index to "
                "skip rows)")
        local = lab - offset
        inside = ~skip & (local >= 0) & (local < x.shape[-1])
        picked = np.take_along_axis(x, np.where(inside, local, 0)[..., None], -1)[..., 0] \
            if x.shape[-1] else np.zeros(lab.shape)
        picked = np.where(inside, picked, 0.0)
        if validate and (code == LOGITS or transform):
            _raise_values("q", x, code, offset)
        if validate and not transform and inside.any():
            ok = (((picked >= 0) & (picked <= 1)) if code == PROB else (picked <= 0)
                  if code == LOG else ~(np.isnan(picked) | (picked == np.inf)))
            bad = inside & ~ok
            if bad.any():
                row = tuple(int(i) for i in np.argwhere(bad)[0])
                requirement = {PROB: "the probability picked by each label must be in "
                                     "[0, 1]",
                               LOG: "the log-probability picked by each label must be <= 0, "
                                    "not NaN",
                               LOGITS: "logits must not be NaN or +inf"}[code]
                raise ValueError(f"q: {requirement}, but the row at index {row} of its dask "
                                 f"block picks {picked[row]!r}")
        if code == LOGITS:
            _, m, w = _log_weights(x, LOGITS, t, True)
            picked = np.where(inside, picked / t, 0.0)
            s = _excess(w, m)     # s - 1: log1p keeps confident rows' digits
        else:
            m, s = np.zeros(lab.shape), x.sum(axis=-1)
        return np.stack([m, s, picked], axis=-1)

    def aggregate(states):
        m, s, picked = (states[0][..., i] for i in range(3))
        for st in states[1:]:
            if code == LOGITS:
                m, s = _excess_merge(m, s, st[..., 0], st[..., 1])
            else:
                s = s + st[..., 1]
            picked = picked + st[..., 2]
        with np.errstate(all="ignore"):
            if code == LOGITS:
                if validate:
                    _raise_sums("q", 1.0 + s, -1.0, "probability mass")
                value = (m - picked) + np.log1p(s)   # two parts >= 0
            elif code == LOG:
                value = -picked
            elif transform:
                if validate and not eps > 0:
                    _raise_sums("q", s, -1.0, "sum")
                value = -np.log((picked + eps) / (s + k * eps))
            else:
                value = -np.log(picked)
        value = value / log_base
        if has_ignore:
            value = np.where(labels_block_skip(states), np.nan, value)
        return value.astype(dtype)

    # the ignored rows: carried as a 4th state column (1 where ignored)
    def labels_block_skip(states):
        return states[0][..., 3] > 0

    def chunk_with_skip(offsets, q_blk, lab):
        state = chunk(offsets, q_blk, lab)
        skip = (np.asarray(lab) == ignore) if has_ignore else np.zeros(state.shape[:-1])
        return np.concatenate([state, skip[..., None].astype(np.float64)], axis=-1)

    return two_stage(chunk_with_skip, aggregate, [q], 4, dtype, extra=[labels])
