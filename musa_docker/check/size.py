"""What an image weighs: its size unpacked, its largest layers with the build step that made each,
the change per layer against the image it replaces, and the size budget checked before tagging.

The engine knows an image unpacked only: the compressed size of a layer is the registry's, known
after a push, so the report says "unpacked" and no more. Layers are read from the image's history
(`docker history`), whose `CreatedBy` names the step; a layer is matched with the previous image's
by that step, so a changed step shows as new.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

from ..engine.api import Engine
from ..errors import BuildError
from ..util import human_size, short_id
from ..values.locations import redact

LARGEST = 5
# Registries refuse layers past a few GB (Docker Hub's and many private ones' limits sit between
# 5 and 10 GB); past this a layer is worth splitting before a push finds the limit.
LAYER_WARN = 4 * 1000 ** 3
_NOP = re.compile(r"^/bin/sh -c #\(nop\)\s*")
# a shell step, with the build args the classic builder (`|2 A=1 B=2 /bin/sh -c …`) and BuildKit
# (`RUN |2 A=1 B=2 /bin/sh -c …`) record before it
_SHELL = re.compile(r"^(RUN )?(\|\d+ .*?)?/bin/sh -c ")
_BUILDKIT = re.compile(r"\s*# buildkit$")
_WIDTH = 72


@dataclass(frozen=True)
class Layer:
    step: str        # the build step that made it, as people read it: `RUN bash install_musa.sh`
    size: int        # bytes, unpacked


def step_of(created_by: str) -> str:
    """The step a history row names, short: `#(nop)` and the build args of a classic RUN dropped,
    a shell command shown as `RUN …`, credentials redacted, cut to one line of a report."""
    text = _BUILDKIT.sub("", " ".join((created_by or "").split()))
    if _NOP.match(text):
        text = _NOP.sub("", text)
    elif _SHELL.match(text):
        text = "RUN " + _SHELL.sub("", text)
    text = redact(text) or "(no step recorded, a base or imported layer)"
    return text if len(text) <= _WIDTH else text[:_WIDTH - 1] + "…"


def layers_of(history: Sequence[dict]) -> Tuple[Layer, ...]:
    """The layers of an image, oldest first, from the engine's history (newest first); the rows
    that only change the config (ENV, LABEL: size 0) are left out."""
    return tuple(Layer(step_of(row.get("CreatedBy") or ""), int(row.get("Size") or 0))
                 for row in reversed(list(history)) if int(row.get("Size") or 0) > 0)


@dataclass(frozen=True)
class Sizes:
    """An image's size and layers, and those of the image it replaces under the same name."""

    image_id: str
    total: int                                   # unpacked, as `docker images` shows it
    layers: Tuple[Layer, ...]
    previous: Optional["Sizes"] = None

    def largest(self, n: int = LARGEST) -> List[Layer]:
        return sorted(self.layers, key=lambda layer: -layer.size)[:n]

    def changes(self) -> List[Tuple[str, int, Optional[int]]]:
        """(step, size now, size before or None when new) of every layer that differs from the
        previous image's layer of the same step; a layer gone has size now 0."""
        if self.previous is None:
            return []
        before = Counter()
        sizes = {}
        for layer in self.previous.layers:
            before[layer.step] += 1
            sizes.setdefault(layer.step, []).append(layer.size)
        out = []
        for layer in self.layers:
            if before[layer.step]:
                old = sizes[layer.step][len(sizes[layer.step]) - before[layer.step]]
                before[layer.step] -= 1
                if old != layer.size:
                    out.append((layer.step, layer.size, old))
            else:
                out.append((layer.step, layer.size, None))
        for step, left in before.items():
            for old in sizes[step][len(sizes[step]) - left:]:
                out.append((step, 0, old))
        return sorted(out, key=lambda c: -abs(c[1] - (c[2] or 0)))

    def big_layers(self) -> List[Layer]:
        """The layers past LAYER_WARN."""
        return [layer for layer in self.layers if layer.size > LAYER_WARN]

    def render(self) -> str:
        """The size lines of a report: the total, the largest layers, the change against the
        previous image (when there is one)."""
        lines = [f"size: {human_size(self.total)} unpacked in {len(self.layers)} layers "
                 "(compressed: the registry's, known after a push)"]
        if self.previous is not None and self.previous.image_id != self.image_id:
            delta = self.total - self.previous.total
            lines[0] += f", {_signed(delta)} against the previous image {short_id(self.previous.image_id)}"
        for layer in self.largest():
            lines.append(f"  {human_size(layer.size):>9}  {layer.step}{_change(self, layer)}")
        changes = self.changes()
        shown = {layer.step for layer in self.largest()}
        rest = [c for c in changes if c[0] not in shown]
        if rest:
            lines.append("  changed layers besides those:")
            for step, now, old in rest[:10]:
                what = "gone" if not now else "new" if old is None else _signed(now - old)
                lines.append(f"  {human_size(now):>9}  {step} ({what})")
            if len(rest) > 10:
                lines.append(f"  … and {len(rest) - 10} more")
        lines.extend(f"warning: the layer of `{layer.step}` is {human_size(layer.size)} unpacked: registries refuse "
                     f"layers past a few GB (warned at {human_size(LAYER_WARN)}); split the step"
                     for layer in self.big_layers())
        return "\n".join(lines)


def _signed(n: int) -> str:
    return ("+" if n >= 0 else "-") + human_size(abs(n))


def _change(sizes: Sizes, layer: Layer) -> str:
    if sizes.previous is None or sizes.previous.image_id == sizes.image_id:
        return ""
    for step, now, old in sizes.changes():
        if step == layer.step and now == layer.size:
            return " (new)" if old is None else f" ({_signed(now - old)})"
    return ""


def measure(engine: Engine, image_id: str, previous: Optional[Sizes] = None) -> Sizes:
    """The sizes of `image_id` (against `previous`). Raises EngineError."""
    image = engine.image(image_id)
    return Sizes(image.id if image else image_id, image.size if image else 0,
                 layers_of(engine.history(image_id)), previous)


def check_budget(sizes: Sizes, budget: Optional[int], flag: str = "--size-budget") -> None:
    """Raise BuildError when the image is over `budget` bytes unpacked, naming its largest layers;
    the caller has not tagged it."""
    if budget is None or sizes.total <= budget:
        return
    largest = "; ".join(f"{layer.step}: {human_size(layer.size)}" for layer in sizes.largest(3))
    raise BuildError(
        f"the new image {short_id(sizes.image_id)} is {human_size(sizes.total)} unpacked, over {flag} "
        f"{human_size(budget)} by {human_size(sizes.total - budget)}, so it was not tagged; its largest layers: "
        f"{largest}; make those steps leave less behind, or raise the budget"
    )
