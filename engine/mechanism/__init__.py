"""How a circuit computes: attention patterns per prompt (``attention``) and node effects ranked on a
task (``rank``). Headless; the app and the CLI show what these return."""
