"""Model-independent searches: anomaly scores trained on background, metrics, search.

Scores (equinox modules; ``score(x)`` for one event, ``scores(xs)`` for a batch,
larger = more anomalous), built untrained by ``make_*`` and trained on background with
:func:`fit_score` (through ``jaxdm.train.fit``):

- :class:`FlowDensityScore` ("rare"): -log p(x) under an unconditional spline flow.
- :class:`Autoencoder`, :class:`VariationalAutoencoder`: reconstruction error and the
  beta-VAE loss of Herrero-Garcia, Patrick & Scaffidi (arXiv:2110.12248), for vectors
  and (``make_conv_*``) images.
- :class:`DeepSVDD` (Ruff et al. 2018): bias-free, fixed-centre one-class network.
- :class:`AnomalyAwareAutoencoder` (after Khosa & Sanz, arXiv:2007.14462).
- :class:`RareAndDifferent` (arXiv:2106.10164): rank-normalised combination.
- :class:`ClassifierScore` with :func:`hyperclass_training_set` (arXiv:2207.07631)
  and :func:`cwola_training_set` (weak supervision, arXiv:1708.02949).

Evaluation: :mod:`.metrics` (ROC, AUC, eps_S at eps_B, SIC, DarkMachines total
improvement, arXiv:2105.14027), :mod:`.injection` (tail-count discovery significance,
Cowan et al. 2011) and :mod:`.search` (score-quantile x category regions with the toy
look-elsewhere correction of the ATLAS general search, arXiv:1807.07447).
"""

from ._base import (
    AbstractScore as AbstractScore,
    AbstractTrainableScore as AbstractTrainableScore,
    fit_score as fit_score,
)
from .autoencoders import (
    Autoencoder as Autoencoder,
    ConvDecoder as ConvDecoder,
    ConvEncoder as ConvEncoder,
    VariationalAutoencoder as VariationalAutoencoder,
    make_autoencoder as make_autoencoder,
    make_conv_autoencoder as make_conv_autoencoder,
    make_conv_vae as make_conv_vae,
    make_vae as make_vae,
)
from .awareness import (
    AnomalyAwareAutoencoder as AnomalyAwareAutoencoder,
    make_anomaly_aware as make_anomaly_aware,
)
from .combine import (
    RareAndDifferent as RareAndDifferent,
    background_tail_probability as background_tail_probability,
    combine_rare_different as combine_rare_different,
)
from .flow_density import (
    FlowDensityScore as FlowDensityScore,
    make_flow_density as make_flow_density,
)
from .hyperclass import hyperclass_training_set as hyperclass_training_set
from .injection import (
    asimov_significance as asimov_significance,
    discovery_significance as discovery_significance,
    injected_tail_counts as injected_tail_counts,
    poisson_p_value as poisson_p_value,
    poisson_significance as poisson_significance,
    tail_threshold as tail_threshold,
)
from .metrics import (
    DARKMACHINES_EPS_B as DARKMACHINES_EPS_B,
    TotalImprovement as TotalImprovement,
    auc as auc,
    roc_curve as roc_curve,
    signal_efficiency as signal_efficiency,
    significance_improvement as significance_improvement,
    significance_improvements as significance_improvements,
    total_improvement as total_improvement,
)
from .search import (
    SearchRegions as SearchRegions,
    SearchResult as SearchResult,
    cell_counts as cell_counts,
    define_regions as define_regions,
    general_search as general_search,
    local_p_values as local_p_values,
    search_cells as search_cells,
)
from .svdd import DeepSVDD as DeepSVDD, make_deep_svdd as make_deep_svdd
from .weak import (
    ClassifierScore as ClassifierScore,
    cwola_training_set as cwola_training_set,
    make_classifier as make_classifier,
)

__all__ = [
    "DARKMACHINES_EPS_B",
    "AbstractScore",
    "AbstractTrainableScore",
    "AnomalyAwareAutoencoder",
    "Autoencoder",
    "ClassifierScore",
    "ConvDecoder",
    "ConvEncoder",
    "DeepSVDD",
    "FlowDensityScore",
    "RareAndDifferent",
    "SearchRegions",
    "SearchResult",
    "TotalImprovement",
    "VariationalAutoencoder",
    "asimov_significance",
    "auc",
    "background_tail_probability",
    "cell_counts",
    "combine_rare_different",
    "cwola_training_set",
    "define_regions",
    "discovery_significance",
    "fit_score",
    "general_search",
    "hyperclass_training_set",
    "injected_tail_counts",
    "local_p_values",
    "make_anomaly_aware",
    "make_autoencoder",
    "make_classifier",
    "make_conv_autoencoder",
    "make_conv_vae",
    "make_deep_svdd",
    "make_flow_density",
    "make_vae",
    "poisson_p_value",
    "poisson_significance",
    "roc_curve",
    "search_cells",
    "signal_efficiency",
    "significance_improvement",
    "significance_improvements",
    "tail_threshold",
    "total_improvement",
]
