"""Two runs sharing one cache at once, on the real engine: `build-all --jobs 2` with two dev images
that share torch_musa, from a cold cache."""

from __future__ import annotations

import pytest

from conftest import git, remove_images


@pytest.mark.engine
@pytest.mark.e2e
def test_build_all_jobs_2_with_two_dev_entries_sharing_torch_musa_on_a_cold_cache(e2e_base, tmp_path, engine):
    import uuid

    import vendor
    from conftest import cli, user_env
    from images import local_pypi
    assert e2e_base["first"].returncode == 0, e2e_base["first"].stderr[-2000:]
    env = user_env(tmp_path)
    files = tmp_path / "vendor"
    musa, mudnn = vendor.musa_toolkits_archive(files), vendor.mudnn_archive(files)
    torch_musa = vendor.torch_musa_repo(tmp_path / "upstream")
    vision = vendor.vision_repo(tmp_path / "upstream")
    tag = uuid.uuid4().hex[:8]
    refs = [f"musa-docker-test/race-{n}:{tag}" for n in ("a", "b")]
    with local_pypi(tmp_path / "index", vendor.dev_index_wheels("3.11")) as index:
        entries = "".join(f"""\
  - name: {n}
    task: build-dev
    image: musa-docker-test/race-{n}
    base_img: {e2e_base['ref']}
""" for n in ("a", "b"))
        matrix = tmp_path / "all.yaml"
        matrix.write_text(f"""\
defaults:
  tag: "{tag}"
  pip_index_url: {index}
  musa_url: {musa}
  mudnn_url: {mudnn}
  torch_musa_repo: {torch_musa.as_uri()}
  torch_musa_ref: v1.0.0
  vision_repo: {vision.as_uri()}
  vision_root: {tmp_path / 'src'}
images:
{entries}""")
        done = cli("build-all", "-c", str(matrix), "--jobs", "2", env=env)
    try:
        assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
        commit = git("rev-parse", "v1.0.0^{commit}", cwd=torch_musa)
        for ref in refs:
            assert engine.images.get(ref).labels["musa_docker.torch_musa.commit"] == commit
        assert done.stdout.count("fetch torch_musa") == 1 and done.stdout.count("clone vision") == 1
    finally:
        remove_images(engine, *refs)
