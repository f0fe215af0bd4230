import matplotlib
import pytest

matplotlib.use("Agg")


@pytest.fixture(scope="session")
def full_replica():
    """The full 737,280-image replica, from the default data folder (built there once if missing)."""
    from fvae_lib.data import DSprites

    return DSprites(source="replica", progress=False)


@pytest.fixture(scope="session")
def small_replica():
    """A reduced grid (3 x 6 x 10 x 8 x 8 = 11,520 images) rendered in memory."""
    from fvae_lib.data import DSprites

    return DSprites(source="replica", steps={"orientation": 4, "posX": 4, "posY": 4}, data_dir="/nonexistent-fvae", progress=False)
