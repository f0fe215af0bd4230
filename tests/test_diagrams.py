"""The diagrams: the permutation trick's picture and Algorithm 2's."""
import numpy as np


def test_the_permutation_picture_keeps_each_column_and_mixes_the_rows():
    from fvae_lib.diagrams import permutation_origins, permutation_picture

    fig = permutation_picture(batch=6, dims=4, seed=0)
    left, right = (ax.images[0].get_array() for ax in fig.axes)
    assert (left == np.arange(6)[:, None]).all()  # one code per row
    assert (np.sort(right, axis=0) == np.arange(6)[:, None]).all()  # each column holds every code once
    assert (right != right[:, :1]).any(axis=1).any()  # and rows now mix codes
    assert (right == permutation_origins(6, 4, 0)).all()
    labels = {t.get_text() for t in fig.axes[1].texts}
    assert {f"z{i},{j}" for i in range(1, 7) for j in range(1, 5)} == labels

def test_the_algorithm_2_diagram_names_both_steps_and_the_detach():
    from fvae_lib.diagrams import algorithm2_diagram

    texts = " ".join(t.get_text() for t in algorithm2_diagram().axes[0].texts)
    for phrase in ("VAE step", "D step", "permute_dims", "z.detach()", "γ · mean(logit₀ − logit₁)", "batch B′"):
        assert phrase in texts, phrase
