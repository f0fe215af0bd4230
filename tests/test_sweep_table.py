"""A sweep's table: the final terms and the flag of a run that ended in a blow-up."""
import pytest

from fvae_lib.sweep_table import final_terms

def test_final_terms_average_the_last_tenth():
    history = [{"step": i, "recon": float(i), "elapsed_s": 1.0} for i in range(1, 21)]
    assert final_terms(history) == {"recon": 19.5}  # the last 2 of 20 windows


def test_a_run_that_ends_in_a_blow_up_is_flagged():
    from fvae_lib.sweep_table import final_spike

    steady = [{"step": 50 * i, "recon": 120.0 - i * 0.1, "kl": 18.0} for i in range(1, 101)]
    assert final_spike(steady) == {"final_spike": pytest.approx(1.0, abs=0.02), "unstable": False}
    spiked = steady[:-3] + [{"step": 50 * i, "recon": 210.0, "kl": 160.0} for i in range(98, 101)]
    flag = final_spike(spiked)
    assert flag["unstable"] and flag["final_spike"] > 2.5
    assert final_spike(steady[:1]) == {}  # too short to tell
