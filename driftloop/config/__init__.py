"""The one typed config tree for a driftloop pipeline.

Loaded from YAML (``configs/*.yaml``) with ``--set a.b=c`` overrides. Every field has a
default and a one-line description; an invalid value fails at load time with a message
naming the field. Secrets never live here: they come from the environment.

Relative paths (the one rule; docs/configuration.md "Paths in a config" says the same): every relative path in a
config loaded with :func:`load_config` is relative to **the folder that holds the config file**,
never to the working directory, whether it is written in the file or given with ``--set``. That
covers ``project.root`` (default ``.``: the config's own folder; the demo's ``configs/sms_spam.yaml``
says ``root: ..``), ``weak_label.lf_module`` when it is a file (ends in ``.py`` or holds a ``/``),
``validation.raw_suite`` / ``validation.train_suite``, ``augment.cache_dir``, and a model field
whose value starts with ``./``, ``../`` or ``~`` (other model values are names). ``load_config``
returns them absolute, so ``show-config`` and ``runs/<id>/config.yaml`` show where each one points.
A config built in code with :func:`from_dict` resolves against ``base_dir`` when one is given and
leaves paths as written otherwise. The GX suites default to the ones packaged with driftloop."""

from driftloop.config.augment import (  # noqa: F401
    AugmentConfig,
    AugmentFilterConfig,
    BackTranslationConfig,
    EdaAction,
    EdaConfig,
    ParaphraseConfig,
    ParaphraseExample,
)
from driftloop.config.base import Role  # noqa: F401
from driftloop.config.data import (  # noqa: F401
    BalanceConfig,
    CleanConfig,
    DataConfig,
    DemoDataConfig,
    LabelModelConfig,
    NearDupConfig,
    ProjectConfig,
    ValidationConfig,
    WeakLabelConfig,
)
from driftloop.config.loader import (  # noqa: F401
    DriftloopConfig,
    apply_overrides,
    from_dict,
    is_path_spec,
    load_config,
    reference_markdown,
    reference_rows,
    resolve_paths,
)
from driftloop.config.model import (  # noqa: F401
    EvaluateConfig,
    GoldRowsConfig,
    PromotionConfig,
    ReviewConfig,
    SelfTrainConfig,
)
from driftloop.config.service import (  # noqa: F401
    DEFAULT_DRIFT_THRESHOLDS,
    DaskConfig,
    DriftConfig,
    IngestConfig,
    MlflowConfig,
    ReportConfig,
    RuntimeConfig,
    ServiceConfig,
    TrackingConfig,
)
from driftloop.config.train import (  # noqa: F401
    METHOD_CLASSES,
    FeatureTrainConfig,
    FullTrainConfig,
    IA3TrainConfig,
    LoraTrainConfig,
    PromptTrainConfig,
    TrainConfig,
    TrainMethodConfig,
    method_class,
    methods_of,
)
