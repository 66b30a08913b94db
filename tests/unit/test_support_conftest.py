"""The tests are sealed: what a developer's shell holds for the tool cannot change what they see."""

import os
import subprocess
import sys

from conftest import REPO, leaky, user_env

OUTER = {"MUSA_DOCKER_TAG": "from-the-shell", "MUSA_DOCKER_BUILD_BASE_IMAGE": "x/y", "INVOKE_RUN_ECHO": "1",
         "DOCKER_HOST": "unix:///nonexistent/docker.sock", "DOCKER_CONTEXT": "elsewhere",
         "MUSA_TOOLKITS_URL": "http://example.invalid/m.tar.gz", "MUDNN_URL": "/x", "MCCL_URL": "/x",
         "TORCH_WHL_URL": "/x", "TORCH_MUSA_WHL_URL": "/x", "PYTORCH_REPO_ROOT_PATH": "/x",
         "TORCH_VISION_REPO_ROOT_PATH": "/x", "DOCKER_BUILD_DIR": "/x", "HTTPS_PROXY": "http://127.0.0.1:9",
         "https_proxy": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9", "no_proxy": "*"}


def test_no_variable_of_the_tool_reaches_a_test(tmp_path):
    assert [k for k in os.environ if leaky(k)] == []
    # a user's env holds only the cache each test gives itself
    assert [k for k in user_env(tmp_path) if leaky(k)] == ["MUSA_DOCKER_CACHE"]


def test_a_developer_shell_is_sealed_out():
    """Run the test above in a pytest whose outer environment sets them all."""
    env = {**os.environ, **OUTER}
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "tests/unit/test_support_conftest.py::test_no_variable_of_the_tool_reaches_a_test"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 passed" in done.stdout


def test_the_seal_keeps_what_is_not_the_tools():
    assert not leaky("PATH") and not leaky("HOME") and not leaky("MUSA_DOCKER_TEST_CACHE")
    assert leaky("https_proxy") and leaky("MUSA_DOCKER_TAG") and leaky("DOCKER_HOST")
