"""The ablation modes and baselines, defined once for the engine, the CLI, sessions and the app.
Torch-free: the app imports this module before the engine is loaded.

* ``mean``: an ablated node takes its mean activation over pretraining text;
* ``zero``: it takes zero;
* ``resample``: it takes its value at random recorded pretraining positions (needs the run's
  activation store), which pruning does not use.

A baseline is what an ablation is applied on top of: the ``circuit`` (everything outside it already
ablated) or the ``full`` model.
"""

MODES = ("mean", "zero", "resample")
PRUNE_MODES = ("mean", "zero")  # the ablations a circuit can be pruned and checked with
BASELINES = ("circuit", "full")


def circuit_mode_for(mode: str) -> str | None:
    """How everything outside the circuit is ablated (the ``circuit`` baseline and the circuit-alone row)
    when the user ablates with ``mode``: ``zero`` and ``resample`` apply to the rest of the model too;
    ``mean`` keeps the mode the circuit was pruned with (None)."""
    return mode if mode in ("zero", "resample") else None


def circuit_alone_label(result) -> str:
    """``circuit alone (resample)``: the circuit-alone row, naming how the rest of the model was
    ablated (an engine AblationResult with the circuit baseline)."""
    mode = getattr(result, "circuit_mode", None)
    return f"circuit alone ({mode})" if mode else "circuit alone"
