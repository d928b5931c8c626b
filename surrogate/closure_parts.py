"""The parts a learned subgrid closure can have (:class:`surrogate.solver.NeuralEddyViscosity`),
named once for the solver and the case files (this module imports neither torch nor pydantic).

* ``mean_field``: a mean-field eddy viscosity ``nu_T(d)`` of the wall distance on the plane-mean shear;
* ``fluctuating``: the pointwise eddy viscosity of local invariants;
* ``rotation``: the non-dissipative strain-rotation stress ``r(d)``;
* ``anisotropy``: the stress of the traceless squares of strain and rotation, ``a_S(d), a_O(d)``;
* ``linear_forcing``: a force ``lambda_i(d) u_i'`` on each component's plane fluctuation;
* ``forcing_target``: a rate of the linear forcing that returns each component's plane energy toward
  a target ``E_i(d)`` (needs ``linear_forcing``).
"""

from __future__ import annotations

from typing import Literal, get_args

__all__ = ["CLOSURE_PARTS", "ClosurePart", "LINEAR_FORCING_BOUND"]

ClosurePart = Literal["mean_field", "fluctuating", "rotation", "anisotropy", "linear_forcing", "forcing_target"]
#: The part names in the order above.
CLOSURE_PARTS: tuple[str, ...] = get_args(ClosurePart)
#: Largest rate of the linear-forcing part, in ``u_tau / h``.
LINEAR_FORCING_BOUND = 20.0
