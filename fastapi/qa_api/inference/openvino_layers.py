"""Cut an OpenVINO QA model at its encoder-layer boundaries, so a scheduler can pause between them.

An IR converted from a BERT-family model (BERT, RoBERTa, ELECTRA, ...) keeps the torch module
names: the hidden states entering layer N are the first input of
`...encoder.layer.N.attention.self.query`'s MatMul, those entering the head the first input of
`...qa_outputs`' (behind a FakeQuantize in an int8 model). The parts are: the embeddings, each
encoder layer, the head; each later part is the whole graph with the boundary tensors replaced by
one `hidden_states` parameter, keeping only what its result needs. The attention-mask subgraph
reads the shape of the embeddings' output, so a part replaces every boundary up to its own start
(same shape), not only the one it starts from. A model whose names do not match runs whole.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

HIDDEN = "hidden_states"
_QUERY = re.compile(r"encoder\.layer\.(\d+)\.attention\.self\.query/")
_HEAD = re.compile(r"\.qa_outputs/")
_PASS_THROUGH = {"FakeQuantize", "Convert"}  # int8 models quantize a boundary on its way in


def split_by_layer(model: Any) -> list[Any] | None:
    """[embeddings, layer 0, ..., layer L-1, head] as ov.Models; None if the names do not match."""
    boundaries = _boundaries(model)
    if boundaries is None:
        return None
    layers = len(boundaries) - 1
    return [
        _part(model, None, 0),
        *(_part(model, k, k + 1) for k in range(layers)),
        _part(model, layers, None),
    ]


def _boundaries(model: Any) -> list[Any] | None:
    """The boundary outputs: entering layer 0..L-1, then entering the head (None: no match)."""
    layers: dict[int, Any] = {}
    head = None
    for op in model.get_ordered_ops():
        if op.get_type_name() != "MatMul":
            continue
        name = op.get_friendly_name()
        if match := _QUERY.search(name):
            layers[int(match.group(1))] = op
        elif _HEAD.search(name):
            head = op
    if head is None or not layers or sorted(layers) != list(range(len(layers))):
        return None
    return [_hidden_input(layers[k]) for k in sorted(layers)] + [_hidden_input(head)]


def _hidden_input(matmul: Any) -> Any:
    source = matmul.input(0).get_source_output()
    while source.get_node().get_type_name() in _PASS_THROUGH:
        source = source.get_node().input(0).get_source_output()
    return source


def _part(model: Any, start: int | None, end: int | None) -> Any:
    """The graph from boundary `start` to boundary `end` (None: the model's inputs / outputs)."""
    import openvino as ov
    from openvino import opset13

    clone = model.clone()  # parts are cut from copies: cutting rewires the graph
    boundaries = _boundaries(clone)
    assert boundaries is not None
    params: list[Any] = []
    if start is not None:
        first = boundaries[start]
        hidden = opset13.parameter(first.get_partial_shape(), first.get_element_type(), name=HIDDEN)
        hidden.output(0).get_tensor().set_names({HIDDEN})
        for boundary in boundaries[: start + 1]:
            for target in list(boundary.get_target_inputs()):
                target.replace_source_output(hidden.output(0))
        params.append(hidden)
    results = list(clone.get_results()) if end is None else [opset13.result(boundaries[end])]
    used = _parameter_names(results)
    params += [p for p in clone.get_parameters() if p.get_friendly_name() in used]
    return ov.Model(results, params, f"{model.get_friendly_name()}-part-{start}")


def _parameter_names(results: Sequence[Any]) -> set[str]:
    """Names of the Parameters the results depend on."""
    names: set[str] = set()
    seen: set[str] = set()
    stack = [result for result in results]
    while stack:
        node = stack.pop()
        key = node.get_friendly_name()
        if key in seen:
            continue
        seen.add(key)
        if node.get_type_name() == "Parameter":
            names.add(key)
        stack.extend(i.get_source_output().get_node() for i in node.inputs())
    return names
