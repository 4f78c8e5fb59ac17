"""The worked examples, formulas and identities of the background texts (shared/seeds/).

DESIGN.md: "the formulas, identities and worked examples in them are facts
the library must reproduce".  Published numbers are quoted as published;
everything else is checked against mpmath on the stored inputs.
"""

import mpmath
import numpy as np
import pytest

import kl_fast
from kl_fast.scipy import rel_entr

from . import mp_reference as mpr

BACKENDS = kl_fast.available_backends()
backends = pytest.mark.parametrize("backend", BACKENDS)

COIN_P = [0.8, 0.2]
COIN_Q = [0.6, 0.4]
LABEL = [1.0, 0.0, 0.0]           # true label = cat
MODEL_A = [0.8, 0.1, 0.1]
MODEL_B = [0.4, 0.3, 0.3]


def seed_snippet_kl(P, Q):
    """The seed's own numpy code, verbatim: 1e-12 smoothing, log2."""
    P = np.array(P)
    Q = np.array(Q)
    return np.sum(P * np.log2((P + 1e-12) / (Q + 1e-12)))


def assert_exact(got, exact, eps_bound=4.0):
    err = mpr.rel_error_eps(got, exact)
    assert err <= eps_bound, f"got {got!r}, exact {float(exact)!r}: {err:.3g} eps"


# -- the coin: KL([0.8, 0.2] || [0.6, 0.4]) -------------------------------------------------------
@backends
def test_coin_example_in_bits(backend):
    got = kl_fast.kl_divergence(COIN_P, COIN_Q, base=2, backend=backend)
    assert np.ndim(got) == 0
    assert round(float(got), 5) == 0.13203                       # DESIGN.md, seed 002
    assert_exact(got, mpr.kl(COIN_P, COIN_Q, base=2))


@backends
def test_coin_example_hand_calculation_in_nats(backend):
    """Seed 002: 0.8 log(0.8/0.6) + 0.2 log(0.2/0.4) ~ 0.23 - 0.14 = 0.09 (natural log)."""
    terms = rel_entr(COIN_P, COIN_Q)
    assert [round(float(t), 2) for t in terms] == [0.23, -0.14]
    got = kl_fast.kl_divergence(COIN_P, COIN_Q, backend=backend)
    assert round(float(got), 2) == 0.09
    assert_exact(got, mpr.kl(COIN_P, COIN_Q))
    for t, p, q in zip(terms, COIN_P, COIN_Q, strict=True):
        assert_exact(t, mpr.rel_entr(p, q))


def test_seed_snippet_reproduces_its_printed_output():
    """The seed prints 0.13202999942331567 for its smoothed snippet; the exact value differs
    from it by the smoothing (~2.4e-13), and kl_fast gives the exact one."""
    snippet = seed_snippet_kl(COIN_P, COIN_Q)
    assert snippet == pytest.approx(0.13202999942331567, rel=1e-14)
    exact = mpr.kl(COIN_P, COIN_Q, base=2)
    ours = kl_fast.kl_divergence(COIN_P, COIN_Q, base=2)
    assert_exact(ours, exact)
    assert abs(float(exact) - 0.13202999942331567) < 1e-11       # the smoothing's effect
    assert abs(float(ours) - float(exact)) < abs(snippet - float(exact))
    assert f"{float(ours):.6f}" == "0.132030"


@backends
def test_coin_divergence_is_asymmetric(backend):
    """Seed 002/000: KL(P||Q) != KL(Q||P); both against mpmath."""
    pq = kl_fast.kl_divergence(COIN_P, COIN_Q, backend=backend)
    qp = kl_fast.kl_divergence(COIN_Q, COIN_P, backend=backend)
    assert_exact(pq, mpr.kl(COIN_P, COIN_Q))
    assert_exact(qp, mpr.kl(COIN_Q, COIN_P))
    assert pq != qp


# -- classification: P = [1, 0, 0] against two models ---------------------------------------------
@backends
def test_classification_models_a_and_b(backend):
    """Seed 002 prints Model A KL: 0.32192809488700175, Model B KL: 1.3219280948851984 (bits,
    with its 1e-12 smoothing); the exact values are log2(1/0.8) and log2(1/0.4)."""
    a = kl_fast.kl_divergence(LABEL, MODEL_A, base=2, backend=backend)
    b = kl_fast.kl_divergence(LABEL, MODEL_B, base=2, backend=backend)
    assert_exact(a, mpr.kl(LABEL, MODEL_A, base=2))
    assert_exact(b, mpr.kl(LABEL, MODEL_B, base=2))
    assert round(float(a), 5) == 0.32193
    assert round(float(b), 5) == 1.32193
    assert float(a) == pytest.approx(0.32192809488700175, abs=1e-11)
    assert float(b) == pytest.approx(1.3219280948851984, abs=1e-11)
    assert seed_snippet_kl(LABEL, MODEL_A) == pytest.approx(0.32192809488700175, rel=1e-14)
    assert seed_snippet_kl(LABEL, MODEL_B) == pytest.approx(1.3219280948851984, rel=1e-14)
    assert a < b                                                  # "Model A ... better model"
    batch = kl_fast.kl_divergence(LABEL, [MODEL_A, MODEL_B], base=2, backend=backend)
    assert batch.tolist() == [float(a), float(b)]


@backends
def test_one_hot_cross_entropy_is_minus_log_of_the_true_class(backend):
    """Seed 001: with one-hot labels the loss is -log yhat_c; H(one-hot) = 0 so CE = KL."""
    q = np.array([MODEL_A, MODEL_B])
    ce = kl_fast.cross_entropy(LABEL, q, backend=backend)
    labels = kl_fast.cross_entropy(np.array([0, 0]), q, backend=backend)
    kl = kl_fast.kl_divergence(LABEL, q, backend=backend)
    assert float(kl_fast.entropy(LABEL, backend=backend)) == 0.0
    for row, c, lab, k in zip(q, ce, labels, kl, strict=True):
        exact = mpr.cross_entropy(LABEL, row)
        assert_exact(c, exact)
        assert_exact(lab, exact)
        assert_exact(k, exact)                                   # KL = CE - H = CE


# -- CE = H + KL on the worked examples -----------------------------------------------------------
@backends
@pytest.mark.parametrize("p, q", [(COIN_P, COIN_Q), (LABEL, MODEL_A), (LABEL, MODEL_B),
                                  (MODEL_B, MODEL_A), (MODEL_A, LABEL)])
@pytest.mark.parametrize("base", [None, 2.0])
def test_cross_entropy_is_entropy_plus_kl_on_the_examples(backend, p, q, base):
    kw = {"backend": backend, "base": base}
    ce = kl_fast.cross_entropy(p, q, **kw)
    h = kl_fast.entropy(p, **kw)
    kl = kl_fast.kl_divergence(p, q, **kw)
    assert_exact(h, mpr.entropy(p, base=base))
    if np.isinf(ce):                                              # MODEL_A || LABEL: q has zeros
        assert np.isinf(kl)
        return
    assert_exact(ce, mpr.cross_entropy(p, q, base=base))
    assert_exact(kl, mpr.kl(p, q, base=base))
    scale = abs(float(ce)) + abs(float(h)) + abs(float(kl))
    assert abs(float(ce) - (float(h) + float(kl))) <= 4 * mpr.EPS64 * scale


@backends
def test_kl_is_zero_only_for_equal_distributions(backend):
    """Seed 000, property 1: KL >= 0 with equality iff P = Q."""
    for p in (COIN_P, LABEL, MODEL_A, MODEL_B):
        assert float(kl_fast.kl_divergence(p, p, backend=backend)) == 0.0
    assert float(kl_fast.kl_divergence(MODEL_A, MODEL_B, backend=backend)) > 0.0


# -- binary KL ------------------------------------------------------------------------------------
BINARY = [(0.8, 0.6), (0.3, 0.7), (0.5, 0.5000001), (0.01, 0.99), (0.999, 0.001),
          (1.0, 0.75), (0.0, 0.25), (1.0, 0.999999), (0.123456789, 0.123456788)]


@backends
@pytest.mark.parametrize("p1, q1", BINARY)
def test_binary_kl_formula(backend, p1, q1):
    """Seed 000 section 2.4.1: p1 log(p1/q1) + (1-p1) log((1-p1)/(1-q1)) is the KL of the
    2-vectors [p1, 1-p1] and [q1, 1-q1] (evaluated exactly on the stored complements)."""
    p = np.array([p1, 1.0 - p1])
    q = np.array([q1, 1.0 - q1])
    got = kl_fast.kl_divergence(p, q, backend=backend)
    formula = mpr.rel_entr(p[0], q[0]) + mpr.rel_entr(p[1], q[1])
    assert formula == mpr.kl(p, q) or formula < 0                 # kl_fast clamps at 0
    err = mpr.scaled_error_eps(got, mpr.kl(p, q), mpr.kl_terms_abs(p, q))
    assert err <= 8.0, (p1, q1, got, float(formula))
    if p1 in (0.0, 1.0):                                          # "usually 0 or 1"
        assert_exact(got, -mpmath.log(mpr.exact(q[0] if p1 else q[1])))
    with np.errstate(divide="ignore", invalid="ignore"):
        textbook = np.nansum([p1 * np.log(p1 / q1), (1 - p1) * np.log((1 - p1) / (1 - q1))])
    assert float(got) == pytest.approx(textbook, rel=1e-6, abs=1e-15)


# -- VAE prior ------------------------------------------------------------------------------------
@backends
def test_vae_prior_closed_form(backend):
    """Seed 000 section 2.5: KL(N(mu, s^2) || N(0, 1)) = 1/2 (mu^2 + s^2 - log s^2 - 1), summed
    over a 2-D latent space, for an encoder emitting (mu, log s^2)."""
    rng = np.random.default_rng(2)
    mu = rng.normal(size=(64, 2))
    logvar = rng.normal(scale=1.5, size=(64, 2))
    got = kl_fast.gaussian_kl(mu, logvar, scale="logvar", backend=backend)
    assert got.shape == (64,)
    for g, m, lv in zip(got, mu, logvar, strict=True):
        exact = mpr.gaussian_kl_prior(m, lv, scale="logvar")
        assert_exact(g, exact)
    with np.errstate(all="ignore"):
        numpy_formula = 0.5 * np.sum(mu**2 + np.exp(logvar) - logvar - 1, axis=-1)
    np.testing.assert_allclose(got, numpy_formula, rtol=1e-12)
    # the same Gaussians in the other parameterizations give the same KL
    var = np.exp(logvar)
    for scale, s in (("var", var), ("std", np.sqrt(var)), ("logstd", logvar / 2)):
        other = kl_fast.gaussian_kl(mu, s, scale=scale, backend=backend)
        for o, m, sv in zip(other, mu, s, strict=True):
            assert_exact(o, mpr.gaussian_kl_prior(m, sv, scale=scale))
        np.testing.assert_allclose(other, got, rtol=1e-13)


@backends
def test_vae_prior_at_the_prior_is_zero(backend):
    """mu = 0, s^2 = 1: the latent distribution is the prior, KL = 0 exactly."""
    got = kl_fast.gaussian_kl(np.zeros((3, 2)), np.zeros((3, 2)), scale="logvar",
                              backend=backend)
    assert np.all(got == 0)


# -- identities of seeds 000 and 001 --------------------------------------------------------------
@backends
def test_chain_rule(backend):
    """Seed 000 property 3: KL(P(X,Y)||Q(X,Y)) = KL(P(X)||Q(X)) + E_P(X) KL(P(Y|X)||Q(Y|X))."""
    rng = np.random.default_rng(3)
    pj = rng.dirichlet(np.ones(12)).reshape(3, 4)
    qj = rng.dirichlet(np.ones(12)).reshape(3, 4)
    kw = {"backend": backend}
    joint = kl_fast.kl_divergence(pj.ravel(), qj.ravel(), normalize=True, **kw)
    px, qx = pj.sum(1), qj.sum(1)
    marginal = kl_fast.kl_divergence(px, qx, normalize=True, **kw)
    conditional = kl_fast.kl_divergence(pj / px[:, None], qj / qx[:, None], normalize=True, **kw)
    rhs = marginal + np.dot(px / px.sum(), conditional)
    assert float(joint) == pytest.approx(float(rhs), rel=1e-14)
    assert_exact(joint, mpr.kl(pj.ravel() / pj.sum(), qj.ravel() / qj.sum()), 8.0)


@backends
def test_jensen_shannon_from_kl(backend):
    """Seed 001: JS(P||Q) = 1/2 KL(P||M) + 1/2 KL(Q||M), M = (P + Q)/2."""
    rng = np.random.default_rng(4)
    p = rng.dirichlet(np.ones(10), 6)
    q = rng.dirichlet(np.ones(10), 6)
    m = (p + q) / 2
    js = kl_fast.js_divergence(p, q, backend=backend)
    via_kl = 0.5 * kl_fast.kl_divergence(p, m, validate=False, backend=backend) + \
        0.5 * kl_fast.kl_divergence(q, m, validate=False, backend=backend)
    np.testing.assert_allclose(js, via_kl, rtol=1e-13)
    for j, a, b in zip(js, p, q, strict=True):
        assert_exact(j, mpr.js(a, b))


@backends
def test_mutual_information_is_kl_from_the_product_of_marginals(backend):
    """Seed 001: I(X;Z) = KL(P(X,Z) || P(X)P(Z)) = H(X) + H(Z) - H(X,Z)."""
    rng = np.random.default_rng(5)
    joint = rng.dirichlet(np.ones(20)).reshape(4, 5)
    px, pz = joint.sum(1), joint.sum(0)
    product = np.outer(px, pz)
    mi = kl_fast.kl_divergence(joint.ravel(), product.ravel(), normalize=True, backend=backend)
    h = kl_fast.entropy
    via_h = h(px, normalize=True) + h(pz, normalize=True) - h(joint.ravel(), normalize=True)
    assert float(mi) == pytest.approx(float(via_h), rel=1e-12)
    independent = np.outer(px, pz)
    assert float(kl_fast.kl_divergence(independent.ravel(), independent.ravel(),
                                       backend=backend, normalize=True)) == 0.0


@backends
def test_mle_is_kl_minimization(backend):
    """Seeds 000/004: over candidate models q, argmin KL(p||q) = argmin CE(p, q) = argmax of the
    mean log-likelihood; the CE of the empirical distribution is -(1/n) sum log q(x_i)."""
    rng = np.random.default_rng(6)
    samples = rng.integers(0, 5, size=400)
    p_hat = np.bincount(samples, minlength=5) / samples.size
    models = rng.dirichlet(np.ones(5), 50)
    kl = kl_fast.kl_divergence(p_hat, models, backend=backend)
    ce = kl_fast.cross_entropy(p_hat, models, backend=backend)
    mean_ll = np.log(models[:, samples]).mean(axis=1)
    assert np.argmin(kl) == np.argmin(ce) == np.argmax(mean_ll)
    np.testing.assert_allclose(ce, -mean_ll, rtol=1e-13)
    # the same from the labels: row m of the batch scores every sample under model m
    labels = np.tile(samples, (50, 1))
    per_model = np.ascontiguousarray(np.broadcast_to(models[:, None, :], (50, samples.size, 5)))
    per_sample = kl_fast.cross_entropy(labels, per_model, backend=backend)
    np.testing.assert_allclose(per_sample.mean(axis=1), ce, rtol=1e-13)
    h = kl_fast.entropy(p_hat, backend=backend)
    np.testing.assert_allclose(ce - h, kl, rtol=1e-10, atol=1e-15)
