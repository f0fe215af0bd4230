"""Disentanglement metrics: pure functions of a ground-truth dataset, a representation and a Generator.

Every metric takes
    data       a ground-truth dataset (the protocol in :mod:`fvae_lib.data`: ``factor_sizes``,
               ``sample_factors(n, rng)``, ``sample_observations(factors, rng)``),
    represent  ``represent(observations) -> (n, d) numpy array``, any representation at all,
    rng        a ``numpy.random.Generator``; nothing reads a global seed,
and has disentanglement_lib's definitions and defaults, so numbers compare with published ones.
Where the FactorVAE paper (or Chen et al. for MIG) differs, the docstring says how, and where that is
cheap the variant is an argument.

All representations are computed in chunks of ``chunk`` observations, so memory stays bounded.
"""
from __future__ import annotations

import numpy as np
import torch

from .encoding import Represent, represent_factors, sample_codes
from .device import default_device
from .gaussians import mixture_entropies, reparameterise


# --------------------------------------------------------------------------------------------------
# The FactorVAE metric (Kim & Mnih 2018)
# --------------------------------------------------------------------------------------------------


def factor_vae_vote(codes: np.ndarray, global_variances: np.ndarray, active: np.ndarray) -> int:
    """One vote of the FactorVAE metric, by its definition: of the ``active`` latents, the one whose variance over
    ``codes`` (L codes that share one fixed factor, L x d) divided by its global variance is smallest, as an index
    into the whole code (0 .. d-1). ``factor_vae_votes`` casts many votes at once the same way."""
    kept = np.flatnonzero(active)
    local = codes[:, kept].var(axis=0, ddof=1)
    return int(kept[np.argmin(local / global_variances[kept])])


def majority_vote_accuracy(votes: np.ndarray, classifier: np.ndarray | None = None) -> float:
    """The share of the votes (K factors x d latents) that the majority-vote classifier gets right. Latent j stands
    for factor ``classifier[j]``: by default the factor that voted for it most, argmax_k V[k, j] (the classifier
    fitted on these votes, so the training accuracy); pass the classifier fitted on other votes to score it."""
    classifier = np.argmax(votes, axis=0) if classifier is None else classifier
    return float(votes[classifier, np.arange(votes.shape[1])].sum() / votes.sum())


def factor_vae_votes(data, represent: Represent, rng: np.random.Generator, num_votes: int, batch_size: int,
                     global_variances: np.ndarray, active: np.ndarray, chunk: int = 8192) -> np.ndarray:
    """Vote matrix V (K factors, active dims): V[k, j] counts votes whose fixed factor was k and whose
    argmin of normalised variance was active dimension j.

    Each vote: choose k uniformly, draw ``batch_size`` points with factor k held at one random value
    and the others random, normalise each dimension's variance by its global variance, and take the
    argmin. Votes are drawn ``chunk // batch_size`` at a time and scored with array operations.
    """
    K = len(data.factor_sizes)
    votes = np.zeros((K, int(active.sum())), dtype=np.int64)
    per_chunk = max(1, chunk // batch_size)
    for start in range(0, num_votes, per_chunk):
        c = min(per_chunk, num_votes - start)
        fixed = rng.integers(K, size=c)
        factors = data.sample_factors(c * batch_size, rng).reshape(c, batch_size, K)
        rows = np.arange(c)
        factors[rows, :, fixed] = factors[rows, 0, fixed][:, None]
        codes = represent_factors(data, represent, factors.reshape(-1, K), rng, chunk).reshape(c, batch_size, -1)
        local = codes[:, :, active].var(axis=1, ddof=1)  # (c, active)
        np.add.at(votes, (fixed, np.argmin(local / global_variances[active], axis=1)), 1)
    return votes


def factor_vae_score(data, represent: Represent, rng: np.random.Generator, *, batch_size: int = 64,
                     num_train: int = 10000, num_eval: int = 5000, num_variance_estimate: int = 10000,
                     prune_threshold: float = 0.05, details: bool = False) -> dict:
    """The FactorVAE metric: accuracy of a majority-vote classifier from argmin normalised variance to the
    fixed factor.

    Each vote fixes one factor k, draws ``batch_size`` (L) points sharing it, divides each latent's variance
    over them by its global variance, and records (k, j) for the latent j with the smallest ratio. With
    V[k, j] the count of votes (k, j), the classifier maps each latent j to the factor argmax_k V[k, j],
    and the score is the share of votes it gets right:

        score = Σ_j max_k V[k, j] / Σ_k Σ_j V[k, j]

    As disentanglement_lib: the global variance of each dimension comes from ``num_variance_estimate``
    random points (ddof 1); dimensions whose global std is below ``prune_threshold`` (collapsed ones)
    are dropped; ``batch_size`` (L) points per vote; the classifier (argmax_k V[k, j] for each dimension
    j) is fitted on ``num_train`` votes and scored on those (train_accuracy) and on ``num_eval`` fresh
    votes (eval_accuracy, the number to report). Accuracy, not the paper's "error rate" wording.

    The paper's own protocol may differ in details its text leaves open; public reimplementations of it use
    L = 100 and 800 votes balanced over factors, some a sample of q(z|x) instead of the mean: pass
    ``batch_size=100, num_train=800`` for the closest cheap variant (its votes are still drawn uniformly over the
    factors, not balanced, and ``num_eval`` still defaults to 5,000).

    ``details``: also return the training votes (``votes``, K factors x active latents, the matrix the
    classifier is read from) and which latents were kept (``active``), to draw them.
    """
    codes = represent_factors(data, represent, data.sample_factors(num_variance_estimate, rng), rng)
    global_variances = codes.var(axis=0, ddof=1)
    active = np.sqrt(global_variances) >= prune_threshold
    if not active.any():
        return {"train_accuracy": 0.0, "eval_accuracy": 0.0, "num_active_dims": 0}
    train = factor_vae_votes(data, represent, rng, num_train, batch_size, global_variances, active)
    evaluation = factor_vae_votes(data, represent, rng, num_eval, batch_size, global_variances, active)
    result = {
        "train_accuracy": majority_vote_accuracy(train),
        "eval_accuracy": majority_vote_accuracy(evaluation, classifier=np.argmax(train, axis=0)),
        "num_active_dims": int(active.sum()),
    }
    if details:
        result.update(votes=train.tolist(), active=np.flatnonzero(active).tolist())
    return result


# --------------------------------------------------------------------------------------------------
# The β-VAE metric (Higgins et al. 2017)
# --------------------------------------------------------------------------------------------------


def beta_vae_features(data, represent: Represent, rng: np.random.Generator, num_points: int, batch_size: int,
                      chunk: int = 8192) -> tuple[np.ndarray, np.ndarray]:
    """(features (n, d), labels (n,)): each feature is mean |z1 − z2| over ``batch_size`` pairs that share
    one factor k (the label), all other factors drawn independently for the two images."""
    K = len(data.factor_sizes)
    feats, labels = [], []
    per_chunk = max(1, chunk // (2 * batch_size))
    for start in range(0, num_points, per_chunk):
        c = min(per_chunk, num_points - start)
        k = rng.integers(K, size=c)
        f1 = data.sample_factors(c * batch_size, rng).reshape(c, batch_size, K)
        f2 = data.sample_factors(c * batch_size, rng).reshape(c, batch_size, K)
        rows = np.arange(c)
        f2[rows, :, k] = f1[rows, :, k]
        both = np.concatenate([f1.reshape(-1, K), f2.reshape(-1, K)])
        z = represent_factors(data, represent, both, rng, chunk)
        z1, z2 = z[: c * batch_size].reshape(c, batch_size, -1), z[c * batch_size :].reshape(c, batch_size, -1)
        feats.append(np.abs(z1 - z2).mean(axis=1))
        labels.append(k)
    return np.concatenate(feats), np.concatenate(labels)


BETA_VAE_CLASSIFIERS = ("lbfgs", "liblinear-ovr")


def beta_vae_score(data, represent: Represent, rng: np.random.Generator, *, batch_size: int = 64,
                   num_train: int = 10000, num_eval: int = 5000, classifier: str = "lbfgs") -> dict:
    """The β-VAE metric: accuracy of a linear classifier (scikit-learn logistic regression) that predicts
    the shared factor from mean |z1 − z2| over ``batch_size`` pairs.

    Defaults as disentanglement_lib (L = 64, 10,000 train and 5,000 eval points). Known failure mode (Kim &
    Mnih): it can reach 100% with only K − 1 factors disentangled, since the classifier can detect the last
    factor by elimination.

    classifier: which logistic regression, since the published numbers and today's code differ:
        "lbfgs" (default): ``LogisticRegression(max_iter=1000)``, a multinomial model fitted by lbfgs. It
            is what disentanglement_lib's own call, ``LogisticRegression(random_state=...)``, gives with
            today's scikit-learn (0.22 and later), with 1,000 iterations instead of 100 so it converges.
        "liblinear-ovr": one binary logistic regression per factor, fitted by liblinear (100 iterations),
            the prediction the most confident of them: scikit-learn's defaults before 0.22, so what
            disentanglement_lib ran when its published tables were made (2019). Use it to compare with those.
        The two can score differently on the same features; tests/test_metrics.py checks both.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier

    if classifier not in BETA_VAE_CLASSIFIERS:
        raise ValueError(f"classifier must be one of {BETA_VAE_CLASSIFIERS}, got {classifier!r}")
    x_train, y_train = beta_vae_features(data, represent, rng, num_train, batch_size)
    x_eval, y_eval = beta_vae_features(data, represent, rng, num_eval, batch_size)
    seed = int(rng.integers(2**31 - 1))
    if classifier == "lbfgs":
        model = LogisticRegression(max_iter=1000, random_state=seed)
    else:
        model = OneVsRestClassifier(LogisticRegression(solver="liblinear", max_iter=100, random_state=seed))
    model.fit(x_train, y_train)
    return {"train_accuracy": float(model.score(x_train, y_train)), "eval_accuracy": float(model.score(x_eval, y_eval))}


# --------------------------------------------------------------------------------------------------
# MIG (Chen et al. 2018), disentanglement_lib's estimator
# --------------------------------------------------------------------------------------------------


def histogram_discretize(codes: np.ndarray, num_bins: int = 20) -> np.ndarray:
    """Each column into ``num_bins`` equal-width bins over its own range (as disentanglement_lib)."""
    out = np.zeros(codes.shape, dtype=np.int64)
    for j in range(codes.shape[1]):
        edges = np.histogram(codes[:, j], num_bins)[1]
        out[:, j] = np.digitize(codes[:, j], edges[:-1])
    return out


def discrete_mutual_info(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """I(a_i; b_k) in nats for every column pair of two discrete arrays (n, I) and (n, K): (I, K).

    The same quantity as scikit-learn's ``mutual_info_score`` (natural log), from contingency tables.
    """
    n = len(a)
    out = np.zeros((a.shape[1], b.shape[1]))
    for i in range(a.shape[1]):
        ai = np.unique(a[:, i], return_inverse=True)[1].ravel()
        for k in range(b.shape[1]):
            bk = np.unique(b[:, k], return_inverse=True)[1].ravel()
            joint = np.bincount(ai * (bk.max() + 1) + bk, minlength=(ai.max() + 1) * (bk.max() + 1))
            joint = joint.reshape(ai.max() + 1, bk.max() + 1) / n
            pa, pb = joint.sum(1, keepdims=True), joint.sum(0, keepdims=True)
            nz = joint > 0
            out[i, k] = float((joint[nz] * np.log(joint[nz] / (pa @ pb)[nz])).sum())
    return out


def discrete_entropy(y: np.ndarray) -> np.ndarray:
    """H(y_k) in nats of every column of a discrete (n, K) array."""
    out = []
    for k in range(y.shape[1]):
        p = np.bincount(np.unique(y[:, k], return_inverse=True)[1].ravel()) / len(y)
        out.append(float(-(p * np.log(p)).sum()))
    return np.array(out)


def mig(data, represent: Represent, rng: np.random.Generator, *, num_train: int = 10000, num_bins: int = 20,
        factor_indices: tuple[int, ...] | None = None, details: bool = False) -> dict:
    """Mutual Information Gap: mean over factors k of (I(z_j*; v_k) − I(z_j°; v_k)) / H(v_k), with j* and
    j° the latents of highest and second-highest mutual information with v_k.

    disentanglement_lib's estimator: encoder means of ``num_train`` points, each dimension discretised
    into ``num_bins`` equal-width bins, discrete mutual information, all factors.

    Chen et al.'s original differs: samples of q(z|x) over the whole dataset, entropies through the
    aggregate posterior, and on dSprites the shape factor left out. Scores from the two estimators
    are not comparable. ``factor_indices=(1, 2,
    3, 4)`` drops shape as Chen does; :func:`mig_sampled` is Chen's estimator itself.

    ``details``: also return the mutual information matrix (``mutual_info``, d latents x K factors, nats) and
    each factor's entropy (``entropy``), to draw them.
    """
    codes, factors = sample_codes(data, represent, num_train, rng)
    if factor_indices is not None:
        factors = factors[:, list(factor_indices)]
    m = discrete_mutual_info(histogram_discretize(codes, num_bins), factors)  # (d, K)
    entropy = discrete_entropy(factors)
    top = np.sort(m, axis=0)[::-1]
    second = top[1] if len(top) > 1 else np.zeros_like(top[0])
    result = {"mig": float(np.mean((top[0] - second) / entropy))}
    if details:
        result.update(mutual_info=m.tolist(), entropy=entropy.tolist())
    return result


def mig_sampled(data, posterior: Represent, rng: np.random.Generator, *, num_samples: int = 10000,
                factor_indices: tuple[int, ...] | None = None, device: str | torch.device | None = None,
                progress: bool = False) -> dict:
    """MIG with Chen et al.'s own estimator (β-TCVAE, ``disentanglement_metrics.py``), from q(z|x) samples.

    posterior(observations) -> (n, 2d) array of q(z|x)'s means, then log-variances
    (``encoder_representation(vae, output="posterior")``). Over the **whole** dataset, one z_n ~ q(z|x_n)
    per image; then
        H(z_j)       entropy of the mixture of all N posteriors' j-th marginals, from ``num_samples`` z's;
        H(z_j | v_k) the same within each value v of factor k (its N / |v_k| images), averaged over v;
        I(z_j; v_k) = H(z_j) − H(z_j | v_k), clamped at 0 and divided by H(v_k) = log |v_k|;
        MIG = mean over factors k of the gap between the two largest I(z_j; v_k) / H(v_k).
    Chen leaves dSprites' shape factor out: ``factor_indices=(1, 2, 3, 4)`` reproduces that (default: every
    factor with more than one value). Needs a full grid with uniform factors, as dSprites is. The cost is
    num_samples · N · d · (1 + K) log-densities (3.7e11 for dSprites at Chen's 10,000 samples): minutes on a
    CPU. ``num_samples=1000`` is ten times cheaper; how close it comes to the 10,000-sample score and the
    measured times are in benchmarks/README.md.

    progress: show a tqdm bar over the entropy estimates (one for the whole dataset, one per factor value).
    Returns {"mig", "mutual_info" (K chosen factors × d, normalised), "factor_indices"}.
    """
    n = len(data)
    params = represent_factors(data, posterior, data.factors_of(np.arange(n)), rng)
    if params.shape[1] % 2:
        raise ValueError(f"posterior must return (n, 2d) columns (means, then log-variances), got {params.shape[1]}")
    sizes = tuple(data.factor_sizes)
    chosen = tuple(factor_indices) if factor_indices is not None else tuple(k for k, s in enumerate(sizes) if s > 1)
    if not chosen or any(not 0 <= k < len(sizes) or sizes[k] < 2 for k in chosen):
        raise ValueError(f"factor_indices must name factors with at least two values among {sizes}, got {chosen}")
    device = torch.device(device) if device is not None else default_device()
    d = params.shape[1] // 2
    mu = torch.as_tensor(params[:, :d], dtype=torch.float32, device=device)
    logvar = torch.as_tensor(params[:, d:], dtype=torch.float32, device=device)
    eps = torch.as_tensor(rng.standard_normal((n, d)), dtype=torch.float32, device=device)
    z = reparameterise(mu, logvar, eps=eps)
    gen = torch.Generator().manual_seed(int(rng.integers(2**63 - 1)))
    from tqdm.auto import tqdm

    bar = tqdm(total=1 + sum(sizes[k] for k in chosen), desc="mig_sampled entropies", disable=not progress)
    with torch.no_grad(), bar:
        marginal = mixture_entropies(z, mu, logvar, num_samples, gen)
        bar.update()
        grid = np.arange(n).reshape(sizes)
        mi = []
        for k in chosen:
            cond = torch.zeros(d, dtype=torch.float64, device=device)
            for v in range(sizes[k]):
                idx = torch.as_tensor(np.take(grid, v, axis=k).ravel(), device=device)
                cond += mixture_entropies(z[idx], mu[idx], logvar[idx], num_samples, gen) / sizes[k]
                bar.update()
            mi.append(((marginal - cond).clamp(min=0) / np.log(sizes[k])).cpu().numpy())
    mi = np.stack(mi)  # (K chosen, d)
    top = np.sort(mi, axis=1)[:, ::-1]
    gap = top[:, 0] - (top[:, 1] if d > 1 else 0.0)
    return {"mig": float(gap.mean()), "mutual_info": mi.tolist(), "factor_indices": list(chosen)}


# --------------------------------------------------------------------------------------------------
# DCI (Eastwood & Williams 2018), with gradient-boosted trees as disentanglement_lib
# --------------------------------------------------------------------------------------------------


def _normalised_entropy(p: np.ndarray, axis: int, base: int) -> np.ndarray:
    p = p + 1e-11
    p = p / p.sum(axis=axis, keepdims=True)
    return -(p * np.log(p)).sum(axis=axis) / np.log(base)


def dci_from_importance(importance: np.ndarray) -> tuple[float, float]:
    """(disentanglement, completeness) from an importance matrix R (d codes, K factors).

    disentanglement = Σ_j ρ_j (1 − H_K(R_j·)),  ρ_j = Σ_k R_jk / Σ R   (each code predicts one factor)
    completeness    = Σ_k ρ_k (1 − H_d(R_·k)),  ρ_k = Σ_j R_jk / Σ R   (each factor is in one code)
    """
    d, K = importance.shape
    weights = importance if importance.sum() > 0 else np.ones_like(importance)
    per_code = 1 - _normalised_entropy(importance, axis=1, base=K)
    per_factor = 1 - _normalised_entropy(importance, axis=0, base=d)
    return (float((per_code * weights.sum(1) / weights.sum()).sum()),
            float((per_factor * weights.sum(0) / weights.sum()).sum()))


def dci(data, represent: Represent, rng: np.random.Generator, *, num_train: int = 10000, num_test: int = 5000,
        n_jobs: int | None = None, details: bool = False) -> dict:
    """DCI disentanglement, completeness and informativeness with scikit-learn's
    GradientBoostingClassifier (default settings) per factor, as disentanglement_lib.

    Importance R[j, k] = |feature_importances_| of code j in the classifier of factor k.
    informativeness_* is the mean classification accuracy over factors on the train and test codes.
    n_jobs: factors fitted in parallel processes (default: all cores).
    details: also return the importance matrix (``importance``, d codes x K factors), to draw it.
    """
    from joblib import Parallel, delayed

    x_train, y_train = sample_codes(data, represent, num_train, rng)
    x_test, y_test = sample_codes(data, represent, num_test, rng)
    K = y_train.shape[1]
    seeds = rng.integers(2**31 - 1, size=K)
    # a factor's fit costs about one tree per class and stage: hand out the largest first, so the last
    # fits to finish are short ones
    order = sorted(range(K), key=lambda k: -len(np.unique(y_train[:, k])))
    fitted = Parallel(n_jobs=n_jobs or -1)(
        delayed(_fit_gbt)(x_train, y_train[:, k], x_test, y_test[:, k], int(seeds[k])) for k in order)
    fits = [fitted[order.index(k)] for k in range(K)]
    importance = np.stack([f[0] for f in fits], axis=1)  # (d, K)
    disentanglement, completeness = dci_from_importance(importance)
    return {
        "disentanglement": disentanglement,
        "completeness": completeness,
        "informativeness_train": float(np.mean([f[1] for f in fits])),
        "informativeness_test": float(np.mean([f[2] for f in fits])),
        **({"importance": importance.tolist()} if details else {}),
    }


def _fit_gbt(x_train, y_train, x_test, y_test, seed):
    from sklearn.ensemble import GradientBoostingClassifier

    model = GradientBoostingClassifier(random_state=seed).fit(x_train, y_train)
    return (np.abs(model.feature_importances_), float(np.mean(model.predict(x_train) == y_train)),
            float(np.mean(model.predict(x_test) == y_test)))


def images_encoded(settings: dict, dataset_size: int | None = None) -> int:
    """How many images the metrics with these keyword settings would encode on the fly, e.g.
    ``images_encoded({"factor_vae": {...}, "mig": {...}})``; compare with ``len(data)`` to decide whether an
    :class:`EncodedGrid` pays. Settings left out take each metric's own defaults (read off its signature,
    so they are never written twice). ``mig_sampled`` encodes the whole dataset: give ``dataset_size``."""
    import inspect

    functions = {"factor_vae": factor_vae_score, "beta_vae": beta_vae_score, "mig": mig, "dci": dci, "mig_sampled": mig_sampled}
    total = 0
    for name, kw in settings.items():
        if name not in functions:
            raise ValueError(f"unknown metric {name!r}; expected one of {sorted(functions)}")
        params = inspect.signature(functions[name]).parameters
        k = {p: v.default for p, v in params.items() if v.default is not inspect.Parameter.empty} | dict(kw)
        if name == "mig_sampled":
            if dataset_size is None:
                raise ValueError("mig_sampled encodes the whole dataset: pass dataset_size")
            total += dataset_size
        elif name == "factor_vae":  # L images per vote, and the points of the global variance
            total += k["batch_size"] * (k["num_train"] + k["num_eval"]) + k["num_variance_estimate"]
        elif name == "beta_vae":  # two images per pair, L pairs per point
            total += 2 * k["batch_size"] * (k["num_train"] + k["num_eval"])
        elif name == "mig":
            total += k["num_train"]
        else:  # dci
            total += k["num_train"] + k["num_test"]
    return total
