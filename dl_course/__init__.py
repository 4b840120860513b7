"""dl_course: implicit regularization of gradient methods in overparameterized networks, in JAX.

Subpackages (imports only point down): ``data``, ``models``, ``optim``, ``train`` (the engine),
``measures``, ``uncertainty``, ``generative``, ``plotting``, then ``studies`` (orchestration, one
module per study), ``configs``, ``rundir`` / ``results``, ``gallery`` and ``cli``. The README
gives the layout and the conventions; ``dl_course.train.sweep`` and ``dl_course.configs`` give
the engine's and the studies' contracts.
"""

__version__ = "0.1.0"
