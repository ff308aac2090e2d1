"""The verbs of the ``lv2`` command that need only the world model and the environments, one module each:
``generate``, ``data``, ``train`` and ``eval``, with the flag helpers they share (:mod:`lv2_env.cli.options`).
The command itself, with the verbs that bring an agent to an environment, is :mod:`agents.cli`."""
