"""dl_course: implicit regularization of gradient methods in overparameterized networks, in JAX.

Subpackages (imports only point down): ``data``, ``models``, ``optim``, ``train``, ``measures``,
``uncertainty``, ``generative``, ``plotting``, ``results``, ``cli``. See ``README.md`` and
``DESIGN.md`` for the architecture and contracts.
"""

__version__ = "0.1.0"
