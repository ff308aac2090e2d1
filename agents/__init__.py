"""Scripted, keyboard and learning agents. They reach worlds only through the Gymnasium API.

``scripted`` (camera paths), ``play`` (the keyboard player of ``lv2 play``), ``teacher`` (the privileged
teacher of the goal task), ``pixel`` (the pixel agent and :func:`~agents.pixel.load_agent`), ``imitation`` (its
labelled frames and training), ``dagger`` (rounds of the student driving and the teacher labelling), ``sb3`` (the
network as an SB3 features extractor), ``evaluation`` (success within 30 steps, rank correlations),
``benchmark`` (``lv2 bench agents``), ``rollout`` (a policy's run written as MP4 and side file) and ``cli`` (the
``lv2`` command, every verb).
"""
