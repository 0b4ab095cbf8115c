"""Models behind one scorer protocol, registered by kind (see :mod:`kdq_lab.models.registry`).

Importing this package registers every model kind: random and oracle (``reference``),
popularity, itemknn, ease, content, lightfm, ials, rp3beta and switch.
"""

# registration, in the order error messages list the kinds
from kdq_lab.models import reference, popularity, itemknn, ease, content, lightfm, ials, rp3beta, switch  # noqa: F401, I001
from kdq_lab.models.base import (
    Composite,
    Explainable,
    FeatureAware,
    Iterative,
    ModelConfig,
    Persistable,
    Refittable,
    Scorer,
    TrainData,
)
from kdq_lab.models.lightfm import LightFMConfig, LightFMHybrid
from kdq_lab.models.registry import (
    REGISTRY,
    ModelSpec,
    load_model,
    make_model,
    model_spec,
    run_role,
)

__all__ = [
    "REGISTRY",
    "Composite",
    "Explainable",
    "FeatureAware",
    "Iterative",
    "LightFMConfig",
    "LightFMHybrid",
    "ModelConfig",
    "ModelSpec",
    "Persistable",
    "Refittable",
    "Scorer",
    "TrainData",
    "load_model",
    "make_model",
    "model_spec",
    "run_role",
]
