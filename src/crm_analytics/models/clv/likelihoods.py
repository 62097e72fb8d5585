"""Log-likelihoods of the BTYD and spend models, per customer or per group of identical histories
(parameters in natural units): BG/NBD, MBG/NBD (with the analytic gradient of their weighted sum),
Pareto/NBD and Gamma-Gamma.
"""

from __future__ import annotations

import numpy as np
from scipy.special import betaln, digamma, gammaln, hyp2f1

from crm_analytics.models.clv.histories import _codes, _Histories


def _ll_bgnbd(params: np.ndarray, h: _Histories) -> np.ndarray:
    """BG/NBD (Fader, Hardie & Lee 2005, eq. 6) per history."""
    r, alpha, a, b = params
    per_x = gammaln(r + h.xu) - gammaln(r) + betaln(a, b + h.xu) - betaln(a, b)
    odds_x = np.log(a) - np.log(b + np.maximum(h.xu, 1) - 1)
    log_T = np.log(alpha + h.T)
    base = per_x[h.ix] + r * np.log(alpha) - (r + h.x) * log_T
    log_odds = odds_x[h.ix] + (r + h.x) * (log_T - np.log(alpha + h.tx))
    return base + np.where(h.x > 0, np.logaddexp(0.0, log_odds), 0.0)


class _BgnbdSums:
    """Weighted (MB)G/NBD log-likelihood and its analytic gradient, for the optimiser.

    Terms that depend on the frequency alone or on ``T`` alone are summed once per distinct
    value with the summed weights; only the "dropped out after the last purchase" term, whose
    share ``s = sigmoid(log_odds)`` mixes x, t_x and T, is evaluated per history. The gradient
    follows from the closed form, e.g. d ll / d r = psi(r+x) - psi(r) + log alpha - log(alpha+T)
    + s (log(alpha+T) - log(alpha+t_x)); one pass gives value and gradient, so the optimiser
    needs no finite differences.
    """

    def __init__(self, h: _Histories, weights: np.ndarray, modified: bool):
        self.modified = modified
        self.xu = h.xu
        self.shift = 1.0 if modified else 0.0  # MBG/NBD: B(a, b+x+1) and odds a/(b+x)
        self.den_x = self.xu if modified else np.maximum(self.xu, 1) - 1
        w = np.asarray(weights, dtype=float)
        self.W = float(w.sum())
        self.W_x = np.bincount(h.ix, w, minlength=self.xu.size)
        self.Tu, iT = _codes(h.T)
        self.W_T = np.bincount(iT, w)
        self.WX_T = np.bincount(iT, w * h.x)
        has = np.ones(h.x.size, dtype=bool) if modified else h.x > 0
        txu, itx = _codes(h.tx[has])
        self.txu, self.itx, self.iT = txu, itx, iT[has]
        self.ix, self.x, self.w = h.ix[has], h.x[has], w[has]

    def __call__(self, params: np.ndarray) -> tuple[float, np.ndarray]:
        r, alpha, a, b = params
        xu, sh = self.xu, self.shift
        log_Tu = np.log(alpha + self.Tu)
        inv_Tu = 1.0 / (alpha + self.Tu)
        per_x = gammaln(r + xu) - gammaln(r) + betaln(a, b + xu + sh) - betaln(a, b)
        d_a_x = digamma(a + b) - digamma(a + b + xu + sh)
        d_b_x = digamma(b + xu + sh) - digamma(b) + d_a_x
        gap = log_Tu[self.iT] - np.log(alpha + self.txu)[self.itx]
        rx = r + self.x
        log_odds = (np.log(a) - np.log(b + self.den_x))[self.ix] + rx * gap
        # softplus and sigmoid from one exp; beyond 30 softplus(z) = z and sigmoid(z) = 1 to double precision
        e = np.exp(np.minimum(log_odds, 30.0))
        softplus = np.where(log_odds > 30.0, log_odds, np.log1p(e))
        ws = self.w * (e / (1.0 + e))
        sum_logT = _dot(self.W_T, log_Tu)
        ll = (_dot(self.W_x, per_x) + self.W * r * np.log(alpha) - r * sum_logT - _dot(self.WX_T, log_Tu)
              + _dot(self.w, softplus))
        grad = np.array([
            _dot(self.W_x, digamma(r + xu) - digamma(r)) + self.W * np.log(alpha) - sum_logT + _dot(ws, gap),
            self.W * r / alpha - r * _dot(self.W_T, inv_Tu) - _dot(self.WX_T, inv_Tu)
            + _dot(ws * rx, inv_Tu[self.iT] - (1.0 / (alpha + self.txu))[self.itx]),
            _dot(self.W_x, d_a_x) + float(ws.sum()) / a,
            _dot(self.W_x, d_b_x) - _dot(np.bincount(self.ix, ws, minlength=xu.size), 1.0 / (b + self.den_x)),
        ])
        return ll, grad


def _dot(u: np.ndarray, v: np.ndarray) -> float:
    """Inner product without BLAS (whose threads stall on a busy machine for vectors this size)."""
    return float(np.einsum("i,i->", u, v))


def _ll_mbgnbd(params: np.ndarray, h: _Histories) -> np.ndarray:
    """MBG/NBD (Batislam, Denizel & Filiztekin 2007) per history."""
    r, alpha, a, b = params
    per_x = gammaln(r + h.xu) - gammaln(r) + betaln(a, b + h.xu + 1) - betaln(a, b)
    odds_x = np.log(a) - np.log(b + h.xu)
    log_T = np.log(alpha + h.T)
    base = per_x[h.ix] + r * np.log(alpha) - (r + h.x) * log_T
    log_odds = odds_x[h.ix] + (r + h.x) * (log_T - np.log(alpha + h.tx))
    return base + np.logaddexp(0.0, log_odds)


def _pareto_log_term(r: float, alpha: float, s: float, beta: float, x: np.ndarray, tau: np.ndarray) -> np.ndarray:
    """log of 2F1(r+s+x, ·; r+s+x+1; z)/(max(alpha,beta)+tau)^(r+s+x), the pieces of A0.

    Uses Euler's transformation, which turns the hypergeometric function into
    ``2F1(1, ·; r+s+x+1; z)``: a series of positive terms, bounded or slowly growing as z -> 1,
    instead of one that overflows for large x (Fader & Hardie 2005, note 009, eqs. 19-20).
    """
    c = r + s + x + 1.0
    if alpha >= beta:
        z = (alpha - beta) / (alpha + tau)
        g = hyp2f1(1.0, r + x, c, z)
        return np.log(g) - s * np.log(beta + tau) - (r + x) * np.log(alpha + tau)
    z = (beta - alpha) / (beta + tau)
    g = hyp2f1(1.0, s + 1.0, c, z)
    return np.log(g) - (r + x - 1.0) * np.log(alpha + tau) - (s + 1.0) * np.log(beta + tau)


def _pareto_log_a0(params: np.ndarray, x: np.ndarray, tx: np.ndarray, T: np.ndarray) -> np.ndarray:
    """log A0 of the Pareto/NBD likelihood; -inf when t_x == T (A0 = 0)."""
    r, alpha, s, beta = params
    first = _pareto_log_term(r, alpha, s, beta, x, tx)
    last = _pareto_log_term(r, alpha, s, beta, x, T)
    d = np.minimum(last - first, 0.0)
    with np.errstate(divide="ignore"):
        return first + np.log(-np.expm1(d))


def _ll_pareto(params: np.ndarray, h: _Histories) -> np.ndarray:
    """Pareto/NBD (Fader & Hardie 2005, note 009, eq. 18) per history."""
    r, alpha, s, beta = params
    x, tx, T = h.x, h.tx, h.T
    if h.px is not None:
        terms = _pareto_log_term(r, alpha, s, beta, h.px, h.ptau)
        first, last = terms[h.i_tx], terms[h.i_T]
        with np.errstate(divide="ignore"):
            log_a0 = first + np.log(-np.expm1(np.minimum(last - first, 0.0)))
    else:
        log_a0 = _pareto_log_a0(params, x, tx, T)
    a1 = (gammaln(r + h.xu) - gammaln(r))[h.ix] + r * np.log(alpha) + s * np.log(beta)
    alive = -(r + x) * np.log(alpha + T) - s * np.log(beta + T)
    died = np.log(s) - np.log(r + s + x) + log_a0
    return a1 + np.logaddexp(alive, died)


def _ll_gamma_gamma(params: np.ndarray, data: tuple[np.ndarray, ...]) -> np.ndarray:
    """Gamma-Gamma spend model (Fader, Hardie & Lee 2005, RFM and CLV) per (x, mean spend)."""
    p, q, v = params
    x, m = data
    px = p * x
    return (gammaln(px + q) - gammaln(px) - gammaln(q) + q * np.log(v) + (px - 1) * np.log(m)
            + px * np.log(x) - (px + q) * np.log(x * m + v))
