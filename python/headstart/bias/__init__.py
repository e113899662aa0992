"""Optimal output-layer bias from label statistics, and the check of a model's first loss.

With the last layer's weights at zero (or outputs that do not yet depend on the input),
the network outputs one constant vector ``b`` for every sample, and the loss at
initialisation is the mean loss of that constant over the training labels. The best ``b``
and that loss depend only on a few statistics of the labels (class frequencies F, positive
rates, mean / median / quantiles / Huber location of the targets), which
:func:`headstart.scan` computes. This package is that math, from statistics to a
:class:`BiasInit`; it never reads data (``headstart.api`` does, through
``headstart.sources``).

Modules: ``losses`` (the registry of names and options), ``closed_forms`` (class tables,
softmax / sigmoid / regression optima), ``hinge`` (the exact multiclass hinge optimum),
``floor`` (finite values for -inf optima), ``result`` (:class:`BiasInit`), ``compute``
(statistics to a result), ``check`` (:class:`InitCheck`).

The formulas (DESIGN.md section 1, REFERENCE.md d4):

============================  ==========================================  =======================
loss                          bias b*                                     loss at b*
============================  ==========================================  =======================
cross_entropy                 log F (+ any shared constant)               H(F); log C balanced
  + weight w                  log(w F / sum w F)                          H of that distribution
  + label_smoothing eps       log a, a = w ((1-eps) F + eps/C)            (sum a / sum wF) H(a/sum a)
BCE with logits, rate p       log(p / (1-p)); pos_weight w: log(w p/(1-p))  binary entropy (weighted)
mse_loss                      mean                                        variance (ddof=0)
l1_loss                       median (midpoint of the two middle values)  mean |y - median|
huber_loss(delta)             Huber location: sum clip(y-b, -d, d) = 0    mean Huber loss at b*
smooth_l1_loss(beta)          Huber location with delta = beta            Huber loss / beta
pinball_loss(tau)             tau-quantile (lowest optimal order stat.)   mean pinball loss
poisson_nll_loss (log link)   log(mean)                                   m - m log m
multi_margin / WW hinge       exact LP optimum (see hinge.ww_levels)      < (C-1) margin [/ C]
Crammer-Singer hinge          top class ahead by the margin iff F_1 > 1/2  min(1, 2 (1-F_1)) margin
============================  ==========================================  =======================

Classes that never occur (or outputs whose rate is 0 or 1, or a Poisson mean of 0) have an
optimal bias of -inf. A real layer needs a finite value, chosen by the ``floor`` rule:

- ``"pseudocount"`` (default, alpha = 0.5) or ``"pseudocount:ALPHA"``: every empty cell is
  treated as if it had been seen ALPHA times. For softmax losses an unseen class gets the
  logit ``log(ALPHA / N)`` while seen classes keep ``log F`` exactly (softmax of the result
  is the count vector with ALPHA in the empty cells, normalised); a sigmoid output with no
  positives gets ``p = ALPHA / (N + ALPHA)`` (no negatives: ``N / (N + ALPHA)``); a Poisson
  mean of 0 becomes ``ALPHA / N``.
- a negative number ``m`` or ``"min_log_prob:m"``: every log-probability is clipped below at
  ``m`` (softmax: ``b = max(log p, m)``; sigmoid: ``p`` and ``1 - p`` clipped at ``exp(m)``;
  Poisson: the log-rate clipped at ``m``).
- ``None`` or ``"none"``: keep ``-inf``.

The expected loss is always the loss at the bias actually returned (after the floor), and
``result.floor.cost`` says how much the floor added to the unfloored optimum.
"""

from .check import InitCheck
from .floor import FloorInfo
from .losses import loss_names
from .result import BiasInit

__all__ = ["BiasInit", "FloorInfo", "InitCheck", "loss_names"]
