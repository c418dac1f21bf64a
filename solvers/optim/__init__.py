"""Implementation of :func:`solvers.optimizers.optimize`, one module per family of methods.

* :mod:`.registry`: one record per method (options class, run function, budget unit, pairs,
  pixel-only, checkpointable), read by every layer that lists methods;
* :mod:`.options`: the frozen option dataclasses of every method;
* :mod:`.state`: exact optimizer checkpoints (:class:`~.state.OptimizerState`);
* :mod:`.line_search`, :mod:`.lbfgs`: our Moré-Thuente search and L-BFGS-B engine;
* :mod:`.step_sizes`: the thesis's tuned step sizes (Tables B.1-B.3);
* :mod:`.recording`: the recorder every method reports to, and the L-BFGS-B skip rule;
* :mod:`.quasi_newton`: ``lbfgs``, ``gd_ls``, ``hd`` and the two-loop recursion;
* :mod:`.first_order`: ``gd``, ``adam``;
* :mod:`.constrained`: ``mma``, ``oc``.

The public entry point is :func:`solvers.optimizers.optimize`.
"""
