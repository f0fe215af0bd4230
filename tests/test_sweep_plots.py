"""The sweep's figures draw the numbers they are given: every seed, the decomposition along training."""
import numpy as np
import pytest

from fvae_lib.sweep_plots import decomposition_along_training, tc_along_training


def _points(name, model, value, tcs, infos, seed=0):
    return [dict(name=name, model=model, value=value, seed=seed, step=1000 * (i + 1), factor_vae=0.5,
                 total_correlation=tc, tc_error=0.1, mutual_info=info) for i, (tc, info) in enumerate(zip(tcs, infos))]


def _errorbar(ax, label):
    """The y values of the error-bar series with this label."""
    container = next(c for c in ax.containers if c.get_label() == label)
    return list(container.lines[0].get_ydata())


def test_decomposition_along_training_draws_each_decomposed_run():
    trajectories = (_points("betavae_b4", "betavae", 4.0, [3.0, 2.0], [9.0, 8.0])
                    + _points("factorvae_g10", "factorvae", 10.0, [4.0, 1.5], [9.5, 10.5])
                    + [dict(name="betavae_b16", model="betavae", value=16.0, seed=0, step=1000, factor_vae=0.4,
                            total_correlation=None, tc_error=None, mutual_info=None)])  # not decomposed: left out
    fig = decomposition_along_training(trajectories)
    info_ax, tc_ax = fig.axes
    drawn = {line.get_label(): line.get_ydata() for line in info_ax.get_lines()}
    assert set(drawn) == {"β-VAE β=4", "FactorVAE γ=10"}
    np.testing.assert_array_equal(drawn["FactorVAE γ=10"], [9.5, 10.5])
    assert _errorbar(tc_ax, "β-VAE β=4") == [3.0, 2.0]
    with pytest.raises(ValueError, match="trajectory_decomposition"):
        decomposition_along_training(trajectories[-1:])


def test_tc_along_training_sets_the_discriminator_against_the_decomposition():
    history = [dict(step=s, tc=0.1) for s in range(50, 2050, 50)]
    fig = tc_along_training({"factorvae_g10": history, "factorvae_g35": history},
                            {"factorvae_g10": _points("factorvae_g10", "factorvae", 10.0, [2.0, 1.8], [9, 9]),
                             "factorvae_g35": 0.9})
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "factorvae_g10: decomposition of its snapshots" in labels and "factorvae_g35: decomposition, final encoder" in labels
    assert _errorbar(ax, "factorvae_g10: decomposition of its snapshots") == [2.0, 1.8]
    estimate = next(line for line in ax.get_lines() if line.get_label() == "factorvae_g10: discriminator's estimate")
    np.testing.assert_allclose(estimate.get_ydata(), 0.1)  # the moving average of a constant
