"""The paper's Table 5 end to end: every flow method through motion segmentation (FBMS-59,
multicut on long-term trajectories, the official-equivalent evaluation) and action
recognition (UCF101 temporal stream, standard protocol), with each method's flow runtime,
in one cached, resumable run and one report.

* :mod:`.config`: :class:`~.config.Table5Config` (methods, roots, both halves' settings);
* :mod:`.runner`: :func:`~.runner.run_table5`, one folder and ``result.json`` per
  (stage, method);
* :mod:`.report`: :func:`~.report.render_report` (``table5.md``, ``.html``, ``.csv``, plots);
* :mod:`.commands`: ``flownet2 table5 run|report`` (also ``python -m evaluations.table5``).
"""
