"""The test images on the real engine: the busybox image the engine tests stand on."""

from __future__ import annotations

import pytest

from images import BUSYBOX_APPLETS, busybox_image


@pytest.mark.engine
def test_busybox_image_has_its_applets_a_bash_and_root(engine):
    ref = busybox_image(engine)
    assert busybox_image(engine) == ref                       # a second call reuses it
    script = "for a in " + " ".join(a for a in BUSYBOX_APPLETS if a not in ("[", "[[")) + \
             '; do [ -x "/bin/$a" ] || echo "missing $a"; done; id -un; echo "$0"'
    out = engine.containers.run(ref, ["bash", "-c", script], remove=True, network_mode="none")
    assert out.decode().split() == ["root", "/bin/sh"]
