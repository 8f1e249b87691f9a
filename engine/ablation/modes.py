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
