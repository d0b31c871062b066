"""The code location `workspace.yaml`, `dg dev` and `dagster dev -m` load.

Definitions are found in `pfo_pipeline/defs/` (one folder per domain) by Dagster's component tree
(what `load_from_defs_folder` builds); resources are bound and the executor chosen here, at the top. Importing
this module does no I/O: the tenants file and dbt's manifest are read when the code location loads
(`defs`, a `@dg.definitions` loader), once per process.
"""

import warnings
from functools import cache
from pathlib import Path

import dagster as dg


def build_resources(lake=None) -> dict[str, object]:
    """Every resource the definitions use, in one place (imported here: importing this module
    stays light, the resources' dependencies load with the definitions). `lake`: a folder or
    location for the lake (default: `PFO_LAKE_CATALOG` / `PFO_LAKE_DATA_PATH`)."""
    from pfo_pipeline.defs.resources import (
        LAKE,
        PowensResource,
        WebhookSensorConfig,
        dbt_resource,
        lake_resource,
    )

    return {
        "powens": PowensResource(),
        LAKE: lake_resource(lake),
        "dbt": dbt_resource(),
        "webhooks": WebhookSensorConfig(),
    }


# Dagster re-creates a sensor with its own `owners=None` when it binds resources to the sensor's
# jobs and warns that the (unused) parameter is beta, once per process: every run step printed it.
warnings.filterwarnings(
    "ignore",
    message=r"Parameter `owners` of initializer `SensorDefinition.__init__`",
    category=dg.BetaWarning,
)


@cache
def load_definitions() -> dg.Definitions:
    """Every asset, check, job, schedule and sensor under `defs/`, with resources bound.

    The tree is built as `load_from_defs_folder` builds it, less the code location name it reads
    from pyproject.toml: the location is named by whatever loads it (`pfo_pipeline` in
    workspace.yaml and for `dg`, the module for `-m pfo_pipeline.definitions`), and a configured
    name that differs made Dagster warn at every step ("The code location name … does not
    match", 31 lines for one `dagster definitions validate -m`)."""
    import pfo_pipeline.defs

    tree = dg.ComponentTree.from_module(pfo_pipeline.defs, project_root=Path(__file__).parents[1])
    with warnings.catch_warnings():
        # What `load_from_defs_folder` silences too: the tree's own preview/beta notices.
        warnings.simplefilter("ignore", dg.PreviewWarning)
        warnings.simplefilter("ignore", dg.BetaWarning)
        found = tree.build_defs()
    return dg.Definitions.merge(
        found,
        # One process per run: a multiprocess step re-imports the code location for work that
        # takes milliseconds, and a run's ledger steps are sequential anyway. Pools still apply.
        dg.Definitions(executor=dg.in_process_executor, resources=build_resources()),
    )


def materializable() -> list[dg.AssetsDefinition | dg.AssetChecksDefinition]:
    """What `dagster.materialize` needs to run any selection with its checks (tests, the demo)."""
    loaded = load_definitions()
    return [*(loaded.assets or []), *(loaded.asset_checks or [])]


@dg.definitions
def defs() -> dg.Definitions:
    return load_definitions()
