"""Metrics calibrated on representations whose quality we know."""
import numpy as np
import pytest
from sklearn.metrics import mutual_info_score

from fvae_lib.data import FactorObservations
from fvae_lib.encoding import EncodedGrid
from fvae_lib.metrics import (
    beta_vae_score,
    dci,
    dci_from_importance,
    discrete_entropy,
    discrete_mutual_info,
    factor_vae_score,
    factor_vae_vote,
    factor_vae_votes,
    majority_vote_accuracy,
    histogram_discretize,
    images_encoded,
    mig,
    mig_sampled,

)

DATA = FactorObservations((3, 6, 10, 8, 8))
K = 5


def identity(x):
    return x.numpy()


def independent(x):
    # codes that ignore the observation entirely (but differ per call): chance level
    return np.random.default_rng(len(x) + int(x.sum() * 1000) % 9973).normal(size=(len(x), K))


def rotated(x, a=np.pi / 4):
    z = x.numpy().copy()
    z[:, 3], z[:, 4] = np.cos(a) * x[:, 3] - np.sin(a) * x[:, 4], np.sin(a) * x[:, 3] + np.cos(a) * x[:, 4]
    return z


def rng(seed=0):
    return np.random.default_rng(seed)


FAST = dict(num_train=2000, num_eval=1000, num_variance_estimate=5000)


def test_factor_vae_score_identity_near_one_and_independent_near_chance():
    good = factor_vae_score(DATA, identity, rng(), **FAST)
    assert good["eval_accuracy"] >= 0.95 and good["train_accuracy"] >= 0.95 and good["num_active_dims"] == K
    bad = factor_vae_score(DATA, independent, rng(), **FAST)
    assert bad["eval_accuracy"] < 0.35  # chance is 1/5 (the classifier may overfit a little)


@pytest.mark.parametrize("classifier", ["lbfgs", "liblinear-ovr"])
def test_beta_vae_score_identity_near_one_and_independent_near_chance(classifier):
    kw = dict(num_train=1000, num_eval=500, classifier=classifier)
    assert beta_vae_score(DATA, identity, rng(), **kw)["eval_accuracy"] >= 0.95
    assert beta_vae_score(DATA, independent, rng(), **kw)["eval_accuracy"] < 0.35  # chance: 1/5


def test_beta_vae_score_refuses_an_unknown_classifier():
    with pytest.raises(ValueError, match="classifier must be one of"):
        beta_vae_score(DATA, identity, rng(), num_train=10, num_eval=10, classifier="svm")


def test_mig_high_for_identity_near_zero_for_independent():
    assert mig(DATA, identity, rng(), num_train=5000)["mig"] > 0.9
    assert mig(DATA, independent, rng(), num_train=5000)["mig"] < 0.05


@pytest.mark.slow
def test_dci_high_for_identity_low_for_independent():
    good = dci(DATA, identity, rng(), num_train=1000, num_test=500, n_jobs=1)
    assert good["disentanglement"] > 0.9 and good["completeness"] > 0.9 and good["informativeness_test"] > 0.9
    bad = dci(DATA, independent, rng(), num_train=1000, num_test=500, n_jobs=1)
    assert bad["disentanglement"] < 0.3 and bad["informativeness_test"] < 0.5


def test_mixing_two_factors_lowers_mig_and_the_factor_vae_metric():
    assert mig(DATA, rotated, rng(), num_train=5000)["mig"] < mig(DATA, identity, rng(), num_train=5000)["mig"] - 0.2
    mixed = factor_vae_score(DATA, rotated, rng(), **FAST)["eval_accuracy"]
    assert mixed < factor_vae_score(DATA, identity, rng(), **FAST)["eval_accuracy"] - 0.1


def test_factor_vae_score_is_invariant_to_rescaling_and_reordering_dimensions():
    perm, scale = np.array([3, 0, 4, 1, 2]), np.array([10.0, 0.2, 3.0, 7.0, 0.5])
    noisy = lambda x: identity(x) + 0.05 * np.random.default_rng(int(x.sum() * 100) % 997).normal(size=(len(x), K))
    base = factor_vae_score(DATA, noisy, rng(3), **FAST)
    moved = factor_vae_score(DATA, lambda x: (noisy(x) * scale)[:, perm], rng(3), **FAST)
    assert base["eval_accuracy"] == moved["eval_accuracy"] and base["train_accuracy"] == moved["train_accuracy"]


def test_a_collapsed_dimension_is_pruned():
    def with_dead(x):
        # two collapsed units: constant but for a rare tiny blip, so most batches see zero variance in them
        g = np.random.default_rng(int(x.sum() * 1000) % 9973)
        blips = 1e-4 * (g.random((len(x), 2)) < 0.01)
        noisy = identity(x) + 0.05 * g.normal(size=(len(x), K))
        return np.concatenate([noisy, 0.3 + blips], 1)

    out = factor_vae_score(DATA, with_dead, rng(), **FAST)
    assert out["num_active_dims"] == K and out["eval_accuracy"] >= 0.9
    # without pruning, the collapsed units win the argmin of most votes whatever factor was fixed
    unpruned = factor_vae_score(DATA, with_dead, rng(), prune_threshold=0.0, **FAST)
    assert unpruned["num_active_dims"] == K + 2 and unpruned["eval_accuracy"] < 0.7
    assert factor_vae_score(DATA, lambda x: np.zeros((len(x), 3)), rng(), **FAST)["num_active_dims"] == 0


def test_the_same_seed_gives_the_same_scores():
    for metric, kw in ((factor_vae_score, FAST), (mig, dict(num_train=2000)), (beta_vae_score, dict(num_train=300, num_eval=200))):
        assert metric(DATA, independent, rng(5), **kw) == metric(DATA, independent, rng(5), **kw)
    assert factor_vae_score(DATA, independent, rng(5), **FAST) != factor_vae_score(DATA, independent, rng(6), **FAST)


def test_discrete_mutual_info_and_entropy_match_scikit_learn():
    g = rng(1)
    a = g.integers(0, 7, size=(3000, 3))
    b = np.stack([a[:, 0] // 2, g.integers(0, 4, 3000)], 1)
    ours = discrete_mutual_info(a, b)
    for i in range(3):
        for k in range(2):
            assert ours[i, k] == pytest.approx(mutual_info_score(a[:, i], b[:, k]), abs=1e-12)
    assert discrete_entropy(b)[0] == pytest.approx(mutual_info_score(b[:, 0], b[:, 0]))
    codes = histogram_discretize(g.normal(size=(1000, 2)), 20)
    assert codes.min() >= 1 and codes.max() <= 20


def test_dci_from_importance_extremes():
    assert dci_from_importance(np.eye(4)) == pytest.approx((1.0, 1.0))
    d, c = dci_from_importance(np.ones((4, 4)))
    assert d == pytest.approx(0.0, abs=1e-6) and c == pytest.approx(0.0, abs=1e-6)
    d, c = dci_from_importance(np.array([[1.0, 1.0], [0.0, 0.0]]))  # one code predicts both factors
    assert d == pytest.approx(0.0, abs=1e-6) and c == pytest.approx(1.0, abs=1e-6)


def test_images_encoded_counts_what_the_metrics_encode():
    settings = {"factor_vae": dict(batch_size=16, num_train=30, num_eval=20, num_variance_estimate=100),
                "beta_vae": dict(batch_size=8, num_train=25, num_eval=10), "mig": dict(num_train=300),
                "dci": dict(num_train=120, num_test=80, n_jobs=1)}
    functions = {"factor_vae": factor_vae_score, "beta_vae": beta_vae_score, "mig": mig, "dci": dci}
    for name, kw in settings.items():
        calls = []
        functions[name](DATA, lambda x: calls.append(len(x)) or identity(x), rng(), **kw)
        assert images_encoded({name: kw}) == sum(calls), name
    assert images_encoded(settings) == 16 * 50 + 100 + 2 * 8 * 35 + 300 + 200
    with pytest.raises(ValueError, match="unknown metric 'sap'"):
        images_encoded({"sap": {}})


# ---------------------------------------------------------------- Chen's MIG estimator

TOY = FactorObservations((4, 5, 6))


def posterior_of(mean_fn, log_sigma=np.log(0.01)):
    def posterior(x):
        mu = mean_fn(x)
        return np.concatenate([mu, np.full_like(mu, 2 * log_sigma)], axis=1)
    return posterior


def test_mig_sampled_near_one_for_identity_and_near_zero_without_information():
    good = mig_sampled(TOY, posterior_of(identity), rng(), device="cpu")
    assert good["mig"] > 0.9 and np.array(good["mutual_info"]).shape == (3, 3)
    blank = mig_sampled(TOY, lambda x: np.zeros((len(x), 6)), rng(), device="cpu")  # q(z|x) = N(0, I) for every x
    assert blank["mig"] < 0.05


def mixed12(x):  # toy factors 1 and 2 rotated into each other
    z = identity(x).copy()
    z[:, 1], z[:, 2] = (x[:, 1] + x[:, 2]).numpy() / 2, (x[:, 1] - x[:, 2]).numpy() / 2
    return z


def test_mig_sampled_drops_for_mixed_factors_and_follows_factor_indices():
    assert mig_sampled(TOY, posterior_of(mixed12), rng(), device="cpu")["mig"] < mig_sampled(TOY, posterior_of(identity), rng(), device="cpu")["mig"] - 0.2

    def no_factor0(x):  # latent 0 carries nothing: N(0, 1) whatever the image
        z = identity(x).copy()
        z[:, 0] = 0.0
        return np.concatenate([z, np.log(np.array([[1.0, 1e-4, 1e-4]])).repeat(len(z), 0)], axis=1)

    every = mig_sampled(TOY, no_factor0, rng(), device="cpu")
    only_12 = mig_sampled(TOY, no_factor0, rng(), factor_indices=(1, 2), device="cpu")
    assert every["mig"] == pytest.approx(2 / 3, abs=0.07) and only_12["mig"] > 0.9 and only_12["factor_indices"] == [1, 2]


def test_mig_sampled_from_an_encoded_grid_and_its_refusals():
    post = posterior_of(mixed12)
    grid = EncodedGrid.encode(TOY, post)
    assert mig_sampled(grid, grid.represent, rng(5), device="cpu") == mig_sampled(TOY, post, rng(5), device="cpu")
    with pytest.raises(ValueError, match="means, then log-variances"):
        mig_sampled(TOY, identity, rng(), device="cpu")
    with pytest.raises(ValueError, match="factor_indices"):
        mig_sampled(TOY, post, rng(), factor_indices=(7,), device="cpu")


def test_the_matrices_behind_the_scores_put_each_factor_on_its_own_latent_for_the_identity():
    fv = factor_vae_score(DATA, identity, rng(), **FAST, details=True)
    mg = mig(DATA, identity, rng(), num_train=2000, details=True)
    dc = dci(DATA, identity, rng(), num_train=500, num_test=300, n_jobs=1, details=True)
    votes, mi, importance = np.array(fv["votes"]), np.array(mg["mutual_info"]), np.array(dc["importance"])
    assert votes.shape == (K, K) and fv["active"] == list(range(K)) and votes.sum() == FAST["num_train"]
    assert mi.shape == (K, K) and importance.shape == (K, K) and len(mg["entropy"]) == K
    diagonal = list(range(K))
    assert list(votes.argmax(1)) == diagonal and list(mi.argmax(0)) == diagonal and list(importance.argmax(0)) == diagonal
    # the mixed code moves posX's and posY's information onto two latents each
    mixed = np.array(mig(DATA, rotated, rng(), num_train=2000, details=True)["mutual_info"])
    assert (mixed[3:, 3:] > 0.2 * mixed[3:, 3:].max()).all()
    assert "votes" not in factor_vae_score(DATA, identity, rng(), **FAST)  # only when asked


def test_the_batched_votes_are_the_single_vote_of_the_definition_cast_many_times():
    """factor_vae_votes casts votes in chunks with array operations; each must be factor_vae_vote of its L codes."""
    rng, seen = np.random.default_rng(0), []
    noisy = np.random.default_rng(1)

    def represent(x):  # rotated, plus a little noise and one collapsed latent in front: votes that are not trivial
        z = np.concatenate([np.full((len(x), 1), 0.5), rotated(x)], axis=1)
        z[:, 1:] += 0.3 * noisy.normal(size=z[:, 1:].shape)
        seen.append(z)
        return z

    L, n = 16, 40
    global_var = np.concatenate([[0.0], np.ones(K)])
    active = np.array([False] + [True] * K)
    votes = factor_vae_votes(DATA, represent, rng, n, L, global_var, active, chunk=L)  # one vote per call
    assert len(seen) == n and votes.shape == (K, K) and votes.sum() == n
    winners = [factor_vae_vote(z, global_var, active) for z in seen]
    assert 0 not in winners  # the collapsed latent never votes
    assert np.bincount(winners, minlength=K + 1)[1:].tolist() == votes.sum(0).tolist()


def test_majority_vote_accuracy_reads_each_latent_as_its_most_voted_factor():
    votes = np.array([[2, 9, 0, 1], [7, 1, 0, 6], [0, 3, 4, 5]])  # latents -> factors 1, 0, 2, 1
    assert majority_vote_accuracy(votes) == pytest.approx((7 + 9 + 4 + 6) / 38)
    # scored with a classifier fitted elsewhere: latents -> factors 0, 0, 0, 0
    assert majority_vote_accuracy(votes, classifier=np.zeros(4, int)) == pytest.approx(12 / 38)

