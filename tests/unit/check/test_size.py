"""Sizes per layer from an image's history, the change against the previous image, the budget."""

import pytest

from musa_docker.check import size
from musa_docker.errors import BuildError
from musa_docker.options.build import resolve_common
from musa_docker.errors import ConfigError
from musa_docker.util import parse_size

GB = 1000 ** 3

# The engine's history, newest first, as both builders record it
HISTORY = [
    {"CreatedBy": "RUN |1 MUSA_SDK=archives /bin/sh -c bash /tmp/common/install_musa.sh # buildkit", "Size": 3 * GB},
    {"CreatedBy": "/bin/sh -c #(nop)  ENV MUSA_HOME=/usr/local/musa", "Size": 0},
    {"CreatedBy": "|2 PYTHON_VERSION=3.11 PIP_INDEX_URL=https://u:s3cret@pypi.example.com/simple /bin/sh -c "
                  "pip install numpy", "Size": 200 * 1000 ** 2},
    {"CreatedBy": "/bin/sh -c #(nop) ADD file:0123abcd in / ", "Size": 80 * 1000 ** 2},
]


def test_layers_name_their_steps_oldest_first_without_args_or_credentials():
    layers = size.layers_of(HISTORY)
    assert [layer.step for layer in layers] == [
        "ADD file:0123abcd in /", "RUN pip install numpy", "RUN bash /tmp/common/install_musa.sh"]
    assert [layer.size for layer in layers] == [80 * 1000 ** 2, 200 * 1000 ** 2, 3 * GB]
    assert all("s3cret" not in layer.step for layer in layers)
    long = size.step_of("/bin/sh -c " + "x" * 300)
    assert len(long) <= 72 and long.endswith("…")


def test_report_shows_total_unpacked_and_the_five_largest_layers():
    rows = [{"CreatedBy": f"/bin/sh -c step{i}", "Size": (i + 1) * 1000 ** 2} for i in range(8)]
    sizes = size.Sizes("sha256:" + "a" * 64, 36 * 1000 ** 2, size.layers_of(rows))
    text = sizes.render()
    assert text.splitlines()[0].startswith("size: 36.0 MB unpacked in 8 layers")
    assert "compressed" in text.splitlines()[0]
    shown = [line.split()[-1] for line in text.splitlines()[1:]]
    assert shown == ["step7", "step6", "step5", "step4", "step3"]


def test_change_per_layer_against_the_previous_image():
    before = size.Sizes("sha256:" + "b" * 64, 0, (size.Layer("ADD file:0123abcd in /", 80 * 1000 ** 2),
                                                  size.Layer("RUN pip install numpy", 100 * 1000 ** 2),
                                                  size.Layer("RUN rm -rf /old", 5 * 1000 ** 2)))
    now = size.Sizes("sha256:" + "c" * 64, 0, size.layers_of(HISTORY), before)
    changes = {step: (new, old) for step, new, old in now.changes()}
    assert changes == {"RUN bash /tmp/common/install_musa.sh": (3 * GB, None),
                       "RUN pip install numpy": (200 * 1000 ** 2, 100 * 1000 ** 2),
                       "RUN rm -rf /old": (0, 5 * 1000 ** 2)}
    text = now.render()
    assert "RUN pip install numpy (+100.0 MB)" in text
    assert "RUN bash /tmp/common/install_musa.sh (new)" in text
    assert "RUN rm -rf /old (gone)" in text
    assert "against the previous image bbbbbbbbbbbb" in text


def test_a_layer_past_4_gb_is_warned_about():
    sizes = size.Sizes("sha256:" + "d" * 64, 5 * GB, (size.Layer("RUN install everything", 5 * GB),))
    assert "warning: the layer of `RUN install everything` is 5.0 GB" in sizes.render()
    assert "warning" not in size.Sizes("sha256:" + "d" * 64, GB, (size.Layer("RUN small", GB),)).render()


def test_budget_fails_naming_the_largest_layers_and_passes_within():
    sizes = size.Sizes("sha256:" + "e" * 64, 3280 * 1000 ** 2, size.layers_of(HISTORY))
    size.check_budget(sizes, None)
    size.check_budget(sizes, 4 * GB)
    with pytest.raises(BuildError) as caught:
        size.check_budget(sizes, 2 * GB)
    message = str(caught.value)
    assert "over --size-budget 2.0 GB" in message and "not tagged" in message
    assert message.index("RUN bash /tmp/common/install_musa.sh: 3.0 GB") < message.index("RUN pip install numpy")


@pytest.mark.parametrize("text,expected", [("20G", 20 * GB), ("20GB", 20 * GB), ("1.5 gb", 1500 * 1000 ** 2),
                                           ("500M", 500 * 1000 ** 2), ("2GiB", 2 * 1024 ** 3), ("4096", 4096)])
def test_sizes_parse(text, expected):
    assert parse_size(text) == expected


def test_size_budget_option_is_checked():
    env = {"HOME": "/tmp/nohome"}
    assert resolve_common({"size_budget": "20G", "builder": "classic"}, env).size_budget == 20 * GB
    assert resolve_common({"builder": "classic"}, env).size_budget is None
    for bad in ("lots", "20X", "0", "-1G"):
        with pytest.raises(ConfigError, match="--size-budget"):
            resolve_common({"size_budget": bad, "builder": "classic"}, env)
