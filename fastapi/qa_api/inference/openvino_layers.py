"""Cut an OpenVINO QA model at its encoder-layer boundaries, so a scheduler can pause between them.

An IR converted from a BERT-family model (BERT, RoBERTa, ELECTRA, ...) keeps the torch module
names: the hidden states entering layer N are the first input of
`...encoder.layer.N.attention.self.query`'s MatMul, those entering the head the first input of
`...qa_outputs`' (behind a FakeQuantize in an int8 model). The parts are: the embeddings, each
encoder layer, the head. Each later part is the whole graph with the boundary tensors replaced by
parameters, keeping only what its results need:
- `hidden_states`: replaces every boundary up to the part's start, not only the one it starts
  from (the attention-mask code reads the shape of the embeddings' output: the same shape);
- `attention_bias`: the attention mask every layer's attention reads, computed once by the
  embeddings part (recomputing it in every part cost about 5% of a short forward pass).
A model whose names do not match is not cut.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, NamedTuple

HIDDEN = "hidden_states"
MASK = "attention_bias"
LOGITS = ("start_logits", "end_logits")
_QUERY = re.compile(r"encoder\.layer\.(\d+)\.attention\.self\.query/")
_HEAD = re.compile(r"\.qa_outputs/")
_PASS_THROUGH = {"FakeQuantize", "Convert"}  # int8 models quantize a boundary on its way in


class Part(NamedTuple):
    model: Any  # openvino.Model
    inputs: tuple[str, ...]  # its parameters' names: model inputs, HIDDEN, MASK
    outputs: tuple[str, ...]  # names of its results, in order: HIDDEN, MASK or LOGITS


def whole_model(model: Any) -> Part:
    return Part(model, _names(model.get_parameters()), LOGITS)


def split_by_layer(model: Any) -> list[Part] | None:
    """[embeddings, layer 0, ..., layer L-1, head]; None if the names do not match."""
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


def _shared_mask(model: Any) -> Any | None:
    """The attention-mask output that every ScaledDotProductAttention reads, if there is one."""
    masks = [
        op.input(3).get_source_output()
        for op in model.get_ordered_ops()
        if op.get_type_name() == "ScaledDotProductAttention" and op.get_input_size() > 3
    ]
    return masks[0] if masks and all(mask == masks[0] for mask in masks) else None


def _part(model: Any, start: int | None, end: int | None) -> Part:
    """The graph from boundary `start` to boundary `end` (None: the model's inputs / outputs)."""
    import openvino as ov

    clone = model.clone()  # parts are cut from copies: cutting rewires the graph
    boundaries = _boundaries(clone)
    assert boundaries is not None
    mask = _shared_mask(clone)
    params: list[Any] = []
    outputs: tuple[str, ...]
    if start is not None:
        params.append(_replace(boundaries[: start + 1], HIDDEN))
        if mask is not None:
            params.append(_replace([mask], MASK))
    if end is None:
        results, outputs = list(clone.get_results()), LOGITS
    else:
        results, outputs = [ov.opset13.result(boundaries[end])], (HIDDEN,)
        if start is None and mask is not None:
            results.append(ov.opset13.result(mask))
            outputs = (HIDDEN, MASK)
    used = _parameter_names(results)
    params = [p for p in [*params, *clone.get_parameters()] if p.get_friendly_name() in used]
    part = ov.Model(results, params, f"{model.get_friendly_name()}-part-{start}")
    return Part(part, _names(params), outputs)


def _replace(outputs: Sequence[Any], name: str) -> Any:
    """A new parameter named `name` that every consumer of `outputs` reads instead."""
    from openvino import opset13

    first = outputs[0]
    parameter = opset13.parameter(first.get_partial_shape(), first.get_element_type(), name=name)
    parameter.output(0).get_tensor().set_names({name})
    for output in outputs:
        for target in list(output.get_target_inputs()):
            target.replace_source_output(parameter.output(0))
    return parameter


def _names(parameters: Sequence[Any]) -> tuple[str, ...]:
    return tuple(parameter.get_friendly_name() for parameter in parameters)


def _parameter_names(results: Sequence[Any]) -> set[str]:
    """Names of the Parameters the results depend on."""
    names: set[str] = set()
    seen: set[str] = set()
    stack = list(results)
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
