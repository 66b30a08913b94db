"""Sizes per layer and the layer-waste rule on a tiny image the real engine builds."""

from __future__ import annotations

import uuid

import pytest

from conftest import cli, remove_images, tar_context, user_env
from musa_docker.check import lean, size
from musa_docker.engine.api import Engine

pytestmark = pytest.mark.engine


@pytest.fixture(scope="module")
def wasteful(engine, busybox):
    """An image one of whose layers writes 3 MB that the next deletes, and a file a later layer chowns."""
    ref = f"musa-docker-test/wasteful:{uuid.uuid4().hex[:8]}"
    dockerfile = (f"FROM {busybox}\n"
                  "RUN dd if=/dev/zero of=/big bs=1000 count=3000 2>/dev/null && echo kept > /keep\n"
                  "RUN rm /big\n"
                  "RUN chown 1:1 /keep\n")
    image, _ = engine.images.build(fileobj=tar_context(dockerfile, {}), custom_context=True, tag=ref, rm=True)
    yield ref
    remove_images(engine, ref)


def test_layer_waste_names_what_a_later_layer_deleted_or_chowned(wasteful):
    found = lean.layer_waste(Engine().saved(wasteful))
    deleted = next(f for f in found if "RUN rm /big" in f.what)
    assert deleted.size == 3_000_000 and "/big" in deleted.what
    assert "written by `RUN dd if=/dev/zero" in deleted.what
    chowned = next(f for f in found if "RUN chown 1:1 /keep" in f.what)
    assert "/keep" in chowned.what and chowned.size == len("kept\n")
    assert "layer waste: 2" in lean.render(found)


def test_sizes_name_the_step_of_each_layer(wasteful):
    sizes = size.measure(Engine(), wasteful)
    assert sizes.largest(1)[0].step.startswith("RUN dd if=/dev/zero of=/big")
    assert sizes.largest(1)[0].size >= 3_000_000


def test_verify_shows_sizes_and_with_lean_the_rules(wasteful, tmp_path):
    done = cli("verify", "-i", wasteful, "--lean", env=user_env(tmp_path))
    assert "size: " in done.stdout and " unpacked in " in done.stdout
    assert "RUN dd if=/dev/zero" in done.stdout
    assert "lean: " in done.stdout and "layer waste: 2" in done.stdout
