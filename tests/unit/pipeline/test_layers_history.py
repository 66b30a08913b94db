"""Which steps of an image's history made its layers, when a tree is appended as a layer."""

from musa_docker.pipeline.layers import _history

# `docker history` (newest first) of a BuildKit image whose RUN steps wrote 0 and 3 bytes, and one nothing
BUILDKIT = [
    {"CreatedBy": "RUN |1 X=1 /bin/sh -c true # buildkit", "Size": 0},
    {"CreatedBy": "WORKDIR /w", "Size": 0},
    {"CreatedBy": "RUN |1 X=1 /bin/sh -c echo hi > /y # buildkit", "Size": 3},
    {"CreatedBy": "ENV A=b", "Size": 0},
    {"CreatedBy": "RUN |1 X=1 /bin/sh -c mkdir /x # buildkit", "Size": 0},
    {"CreatedBy": "ARG X=1", "Size": 0},
    {"CreatedBy": '/bin/sh -c #(nop)  CMD ["/bin/sh"]', "Size": 0},
    {"CreatedBy": "/bin/sh -c #(nop)  ENV PATH=/bin", "Size": 0},
    {"CreatedBy": "/bin/sh -c #(nop) ADD file:32a6357e34b5 in / ", "Size": 1982922},
]


def test_a_buildkit_run_that_wrote_nothing_still_made_its_layer():
    made = [h["created_by"] for h in _history(BUILDKIT, 5) if not h.get("empty_layer")]
    assert made == ["/bin/sh -c #(nop) ADD file:32a6357e34b5 in / ", "RUN |1 X=1 /bin/sh -c mkdir /x # buildkit",
                    "RUN |1 X=1 /bin/sh -c echo hi > /y # buildkit", "WORKDIR /w",
                    "RUN |1 X=1 /bin/sh -c true # buildkit"]


def test_when_the_steps_do_not_add_up_the_sized_entries_are_taken():
    made = [h["created_by"] for h in _history(BUILDKIT, 2) if not h.get("empty_layer")]
    assert made == ["/bin/sh -c #(nop) ADD file:32a6357e34b5 in / ", "RUN |1 X=1 /bin/sh -c echo hi > /y # buildkit"]
