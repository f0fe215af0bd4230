"""The metric over training: the FactorVAE metric (and, if asked, the KL decomposition) of a run's snapshots."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .runs import RunFolder

# The FactorVAE metric of each snapshot, with fewer votes than `full` (its standard error at 500 evaluation
# votes is at most 2.2 points) so that a snapshot costs seconds, not minutes, on a CPU.
TRAJECTORY_SETTINGS = dict(batch_size=64, num_train=500, num_eval=500, num_variance_estimate=5000)
DECOMPOSITION_TERMS = ("mutual_info", "total_correlation", "dimwise_kl", "avg_kl", "tc_error", "mc_error")


def write_trajectory(run: Path, every: int, data, device: str = "cpu", decomposition_samples: int | None = None) -> list[dict]:
    """The FactorVAE metric (TRAJECTORY_SETTINGS) of each snapshot whose step is a multiple of ``every``.

    ``decomposition_samples``: also the KL decomposition of each of those snapshots (``DECOMPOSITION_TERMS``,
    with q(z) over every image of ``data``, as :func:`fvae_lib.evaluate.evaluate_run` computes it for the
    final model), with that many Monte Carlo samples. It encodes the whole grid once per snapshot, and the
    metric then reads its means from that grid (the same score as encoding on the fly).
    """
    from .config import resolve_device
    from .decomposition import kl_decomposition
    from .encoding import EncodedGrid, encoder_representation
    from .metrics import factor_vae_score
    points = []
    for step, vae in RunFolder(run).load_snapshots(resolve_device(device)):
        if every and step % every:
            continue
        if decomposition_samples:  # the grid of posteriors is encoded anyway: score the metric from its means
            posteriors, source = EncodedGrid.encode_posteriors(data, vae)
            represent = source.represent
        else:
            source, represent = data, encoder_representation(vae)
        score = factor_vae_score(source, represent, np.random.default_rng(0), **TRAJECTORY_SETTINGS)
        point = dict(step=step, factor_vae=score["eval_accuracy"])
        message = f"trajectory: step {step} FactorVAE metric {score['eval_accuracy']:.3f}"
        if decomposition_samples:
            terms = kl_decomposition(vae, data, np.random.default_rng([step, 99]), num_samples=decomposition_samples,
                                     posteriors=posteriors)
            point.update({k: round(terms[k], 4) for k in DECOMPOSITION_TERMS})
            message += f", I(x;z) {terms['mutual_info']:.2f}, TC {terms['total_correlation']:.2f} nats"
        points.append(point)
        print(message)
    settings = dict(TRAJECTORY_SETTINGS, **({"decomposition_samples": decomposition_samples} if decomposition_samples else {}))
    RunFolder(run).write_trajectory(dict(settings=settings, points=points))
    return points
