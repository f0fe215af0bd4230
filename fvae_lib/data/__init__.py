"""Ground-truth datasets: the data protocol, dSprites (real file or offline replica), the batch sampler.

Every consumer (the trainer, the metrics, the notebooks) sees a dataset through one small protocol,
:class:`GroundTruthData`: factor names, sizes and values, ``sample_factors(n, rng)``,
``sample_observations(factors, rng)``, ``index_of`` / ``factors_of`` in row-major order, and ``len``.

dSprites comes from one of two sources, chosen by ``source``:

* ``"real"``: DeepMind's ``dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz``, checked and streamed
  (:mod:`.real_file`).
* ``"replica"``: an offline re-rendering that follows the reverse-engineered spec (:mod:`.replica`).

Either way the images end up in one bit-packed cache format (:mod:`.cache`). The modules, each with one
reason to change, and the import arrows between them run one way:

    protocol   the protocol, the row-major grid helpers, a toy dataset whose observations are its factors
    spec       dSprites' factors, values and reduced grids
    replica    the offline renderer                                  (spec)
    cache      bit packing, the data folder, the packed cache        (protocol, spec, fvae_lib.storage)
    real_file  reading the real npz                                   (protocol, spec, cache)
    dsprites   the DSprites dataset                                   (all of the above)
    sampler    training batches on the device                         (cache)
"""
from .cache import default_data_dir, pack_images, unpack_images
from .dsprites import DSprites
from .protocol import DatasetError, FactorGridMixin, FactorObservations, GroundTruthData
from .real_file import inspect_real_file
from .replica import HEART_POLYGON, REPLICA_VERSION, render_dsprites
from .sampler import BatchSampler
from .spec import (FACTOR_NAMES, FULL_SIZES, FULL_VALUES, IMAGE_SIZE, PACKED_BYTES, REAL_FILENAME, REAL_MD5, REAL_MEAN_PIXEL,
                   grid_sizes)

__all__ = [
    "BatchSampler", "DatasetError", "DSprites", "FactorGridMixin", "FactorObservations", "GroundTruthData",
    "default_data_dir", "pack_images", "unpack_images", "inspect_real_file", "HEART_POLYGON", "render_dsprites",
    "FACTOR_NAMES", "FULL_SIZES", "FULL_VALUES", "IMAGE_SIZE", "PACKED_BYTES", "REAL_FILENAME", "REAL_MD5",
    "REAL_MEAN_PIXEL", "REPLICA_VERSION", "grid_sizes",
]
