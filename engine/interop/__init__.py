"""Other projects' weight-sparse models as ordinary run folders, and our runs in their formats.

* :mod:`engine.interop.openai_format`: OpenAI ``circuit_sparsity`` config keys, parameter and hook
  names, and how each maps onto ours (data and small functions, no torch).
* :mod:`engine.interop.openai_read`: reading their ``final_model.pt`` safely and strictly.
* :mod:`engine.interop.openai_tokenizer`: their ``tinypython`` tokenizer files as our BPE tokenizer.
* :mod:`engine.interop.openai_import`: ``circuit-engine import-openai``, a model folder to a run folder.
* :mod:`engine.interop.openai_export`: ``circuit-engine export-openai``, a run folder to a model folder.
* :mod:`engine.interop.openai_circuits`: their released circuit files (``viz_data.pt``) as our circuit files.

Sits just below ``api`` in the engine's layers (docs/architecture.md, "Layers"); knows nothing about Qt.
"""
