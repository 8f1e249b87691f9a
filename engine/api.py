"""The engine's facade for the desktop app, the CLI and notebooks.

One import gives the whole headless workflow, each name defined once in the package that owns it
(see docs/architecture.md for the packages and their layers)::

    from engine import api
    cfg = api.make_config("tiny", steps=200)
    result = api.run_to_end(api.train("runs/tiny", cfg), print)   # training is a generator of events
    print(api.run_info("runs/tiny")["matrix_density"])
    print(api.eval_tasks("runs/tiny", ["single_double_quote"]))
    api.prune_run("runs/tiny", "single_double_quote")             # -> circuits/<task>/mean.json
    api.keep_freed_memory()   # glibc: freed activations stay in the process for the next click
    ablator = api.make_ablator("runs/tiny", "single_double_quote", circuit="single_double_quote")
    print(ablator.evaluate(["blocks.0.mlp.neuron:3"], [], "mean", "circuit"))

Everything here takes and returns plain data (paths, frozen dataclasses, dicts of numbers, numpy
arrays) or a live object the caller owns (an Ablator, a LoadedRun, a job generator), so it can
cross threads and the engine/app boundary. This module only re-exports: it defines nothing, and no
engine module imports it (an import-linter contract). Importing it loads torch; the app does so
lazily, in its worker threads.
"""

from __future__ import annotations

# -- errors, configs, runs ---------------------------------------------------------------------
from engine.errors import UserError
from engine.config import RunConfig, make_config, preset, preset_names, run_config_from_dict
from engine.paths import derived_dir, resolve_run, run_name
from engine.runs import LoadedRun, load_run, read_log, run_checkpoints, run_info
from engine.jobs import run_to_end
from engine.sites import SITE_KINDS, SITE_LABELS, NodeId, all_sites, parse_site, site_width

# -- training ------------------------------------------------------------------------------------
from engine.train.loop import TrainEvent, TrainResult, train
from engine.train.monitor import DEFAULT_MONITOR_TASKS
from engine.train.setup import TrainStatus, check_output_dir, damaged_log_lines, train_status
from engine.train.synth import synth_config, synth_run
from engine.kernels import dense_reference, kernel_policy
from engine.allocator import keep_freed_memory

# -- tasks ---------------------------------------------------------------------------------------
from engine.tasks.evaluate import check_task_file, eval_tasks, resolve_task_arg, task_data
from engine.tasks.files import load_task_file
from engine.tasks.lookup import get_task, list_tasks
from engine.tasks.types import Task, TaskPair

# -- circuits, pruning, faithfulness, comparison, formation --------------------------------------
from engine.circuits.circuit import Circuit, CircuitEntry, EdgeSet, list_circuits, load_circuit, make_circuit, weight_edges
from engine.circuits.library import circuit_for_task, circuit_index, circuit_roots, find_circuit
from engine.pruning.compare import compare
from engine.pruning.faithfulness import faithfulness_report
from engine.pruning.formation import formation, formation_checkpoints, formation_nodes, load_formation
from engine.pruning.job import prune_loaded, prune_run
from engine.pruning.prune import PruneConfig, PruneEvent

# -- live ablation -------------------------------------------------------------------------------
from engine.ablation.ablator import AblationResult, Ablator, Edge
from engine.ablation.means import load_means, node_means
from engine.ablation.modes import BASELINES, MODES
from engine.ablation.setup import make_ablator, run_ablator
from engine.mechanism.attention import PromptAttention, head_attention, prompt_attention, run_attention
from engine.ablation.scan import evaluate_each
from engine.mechanism.rank import (NodeEffect, RankEvent, attribution_estimates, exact_effects, rank_circuit, rank_job,
                                   rank_nodes, rank_whole_model, spearman)
from engine.mechanism.trace import PairTrace, trace_pair

# -- activation store ----------------------------------------------------------------------------
from engine.store.activations import ActivationStore, default_store_path, partial_path
from engine.store.record import record_store

# -- OpenAI's released models and circuits ---------------------------------------------------------
from engine.interop.openai_circuits import import_viz_circuits
from engine.interop.openai_export import export_openai_job
from engine.interop.openai_import import import_openai, import_openai_job

# -- the view of a circuit: layout, sessions, data exports ---------------------------------------
from engine.scene.export import (
    DEFAULT_SIZE as EXPORT_DEFAULT_SIZE, FORMATS as EXPORT_FORMATS, GUI_EXTRA_MESSAGE as EXPORT_GUI_MESSAGE,
    IMAGE_FORMATS as EXPORT_IMAGE_FORMATS, add_export_arguments, check_image_size, check_output, output_paths,
    parse_ablate, write_image, write_view,
)
from engine.scene.diff import bundle_partner, circuit_names, resolve_circuit, run_diff
from engine.scene.focus import (CircuitDiff, DiffView, FocusSettings, circuit_diff, degree_mask, diff_view, emphasis,
                                neighbourhood)
from engine.scene.attribution import edge_attribution, run_trace

__all__ = [
    "UserError", "RunConfig", "make_config", "preset", "preset_names", "run_config_from_dict",
    "derived_dir", "resolve_run", "run_name", "LoadedRun", "load_run", "read_log", "run_checkpoints", "run_info",
    "run_to_end", "SITE_KINDS", "SITE_LABELS", "NodeId", "all_sites", "parse_site", "site_width",
    "TrainEvent", "TrainResult", "train", "DEFAULT_MONITOR_TASKS", "TrainStatus", "check_output_dir", "damaged_log_lines", "train_status",
    "synth_config", "synth_run", "dense_reference", "kernel_policy", "keep_freed_memory",
    "check_task_file", "eval_tasks", "resolve_task_arg", "task_data", "load_task_file", "get_task", "list_tasks",
    "Task", "TaskPair",
    "Circuit", "CircuitEntry", "EdgeSet", "list_circuits", "load_circuit", "make_circuit", "weight_edges",
    "circuit_for_task", "circuit_index", "circuit_roots", "find_circuit", "compare", "faithfulness_report",
    "formation", "formation_checkpoints", "formation_nodes", "load_formation", "prune_loaded", "prune_run",
    "PruneConfig", "PruneEvent",
    "AblationResult", "Ablator", "Edge", "load_means", "node_means", "BASELINES", "MODES", "make_ablator",
    "run_ablator", "PromptAttention", "head_attention", "prompt_attention", "run_attention",
    "NodeEffect", "attribution_estimates", "exact_effects", "rank_circuit", "rank_nodes", "rank_whole_model", "spearman",
    "RankEvent", "evaluate_each", "rank_job",
    "PairTrace", "trace_pair", "edge_attribution", "run_trace",
    "ActivationStore", "default_store_path", "partial_path", "record_store",
    "import_openai", "import_openai_job", "import_viz_circuits", "export_openai_job",
    "EXPORT_DEFAULT_SIZE", "EXPORT_FORMATS", "EXPORT_GUI_MESSAGE", "EXPORT_IMAGE_FORMATS", "add_export_arguments",
    "check_image_size", "check_output", "output_paths", "parse_ablate", "write_image", "write_view",
    "bundle_partner", "circuit_names", "resolve_circuit", "run_diff", "CircuitDiff", "DiffView", "FocusSettings",
    "circuit_diff", "degree_mask", "diff_view", "emphasis", "neighbourhood",
]
