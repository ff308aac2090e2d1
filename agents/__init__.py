"""Scripted, keyboard and learning agents. They reach worlds only through the Gymnasium API.

``scripted`` (camera paths), ``keyboard`` (``lv2 play``), ``teacher`` (the privileged teacher of the goal task),
``pixel`` (the pixel agent and :func:`~agents.pixel.load_agent`), ``imitation`` (its labelled frames and
training), ``dagger`` (rounds of the student driving and the teacher labelling), ``sb3`` (the network as an SB3
features extractor), ``evaluation`` (success within 30 steps, rank correlations) and ``benchmark``
(``lv2 bench agents``).
"""
