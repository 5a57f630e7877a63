"""Signature runners: call a model's named entry point with named arrays, as LiteRT's SignatureRunner.

A SignatureDef names a subgraph and maps aliases to its input and output tensors.
Models with several signatures (a converted module with several methods) have one
subgraph per signature; each runner plans and runs its own subgraph, resized to the
shapes of the arrays it is given.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .interpreter import Interpreter


class SignatureRunner:
    """Runs one SignatureDef: ``runner(**inputs) -> {output alias: array}``.

    Made by :meth:`pydeeplab.Interpreter.get_signature_runner`. Each call resizes the
    subgraph's inputs to the given arrays (re-planning only when a shape changed),
    sets them, runs the subgraph and returns copies of its outputs. Re-planning subgraph 0
    while an array from ``interpreter.tensor(i)()`` is held raises RuntimeError (that array
    would show freed memory); with unchanged shapes the runner runs, as LiteRT's does.
    """

    def __init__(self, interpreter: Interpreter | None = None, signature_key: str | None = None):
        if not interpreter:
            raise ValueError("None interpreter provided.")
        if not signature_key:
            raise ValueError("None signature_key provided.")
        signatures = {s.key: s for s in interpreter.model.signature_defs}
        if signature_key not in signatures:
            known = ", ".join(repr(k) for k in signatures) or "none"
            raise ValueError(f'Invalid signature_key provided: "{signature_key}". (The model\'s signatures: {known})')
        self._interpreter = interpreter
        self._signature_key = signature_key
        signature = signatures[signature_key]
        self._inputs = dict(signature.inputs)
        self._outputs = dict(signature.outputs)
        self._subgraph_index = signature.subgraph_index
        self._plan = interpreter._subgraph(signature.subgraph_index)

    def __call__(self, **kwargs: np.ndarray) -> dict[str, np.ndarray]:
        """Run the signature on arrays named by its input aliases; returns {output alias: array}."""
        if len(kwargs) != len(self._inputs):
            raise ValueError("Invalid number of inputs provided for running a SignatureDef, "
                             f"expected {len(self._inputs)} vs provided {len(kwargs)}")
        values = {}
        for name, value in kwargs.items():
            if name not in self._inputs:
                raise ValueError(f"Invalid Input name ({name}) for SignatureDef "
                                 f"(its inputs: {', '.join(self._inputs)})")
            values[name] = np.asarray(value)
        plan = self._plan
        with plan._lock:
            for name, value in values.items():
                plan._resize_input(self._inputs[name], value.shape)
            if not plan._allocated:
                plan.allocate_tensors()
            for name, value in values.items():
                plan.set_tensor(self._inputs[name], value)
            plan._invoke()
            return {name: plan.get_tensor(index) for name, index in self._outputs.items()}

    def get_input_details(self) -> dict[str, dict]:
        """{input alias: details}, the details as :meth:`Interpreter.get_input_details` gives them."""
        details = self._interpreter._get_tensor_details
        return {name: details(i, self._subgraph_index) for name, i in self._inputs.items()}

    def get_output_details(self) -> dict[str, dict]:
        """{output alias: details}, the details as :meth:`Interpreter.get_output_details` gives them."""
        details = self._interpreter._get_tensor_details
        return {name: details(i, self._subgraph_index) for name, i in self._outputs.items()}
