"""Scripted, keyboard and learning agents. They reach worlds only through the Gymnasium API.

``scripted`` (camera paths), ``keyboard`` (``lv2 play``), ``teacher`` (the privileged teacher of the goal task),
``pixel`` (the pixel agent and :func:`~agents.pixel.load_agent`), ``imitation`` (how it is taught),
``evaluation`` (success within 30 steps, rank correlations) and ``benchmark`` (``lv2 bench agents``).
"""
