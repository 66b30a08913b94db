"""`musa-docker lock`'s front door: `lock TASK [FLAGS]` takes the task's flags and lock's own in one
parser, each value from its own task's cascade; bad input is one `error:` line and nothing starts."""

from __future__ import annotations

from conftest import assert_one_error, cli


def test_lock_task_help_has_the_build_flags_and_locks_own_but_no_lock_or_dry_run(env):
    done = cli("lock", "build-dev", "--help", env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: musa-docker lock build-dev [FLAGS]")
    for flag in ("-b IMAGE, --base-img IMAGE", "-o FILE, --output FILE", "--update NAME", "--musa-apt-source"):
        assert flag in done.stdout
    assert "--lock FILE" not in done.stdout and "--dry-run" not in done.stdout and "--config" not in done.stdout
    assert cli("help", "lock", "build-dev", env=env).stdout == done.stdout


def test_lock_without_a_task_or_a_file_says_what_it_needs(env):
    assert_one_error(cli("lock", env=env), "lock needs a build task and its flags", "or -c FILE")


def test_a_flag_of_another_task_is_refused(env):
    assert_one_error(cli("lock", "build-base", "-b", "x:1", env=env), "lock build-base has no flag -b")


def test_update_needs_an_existing_lock(env, tmp_path):
    done = cli("lock", "build-base", "-o", str(tmp_path / "none.json"), "--update", "pytorch", env=env)
    assert_one_error(done, "--update needs the lock file to update", "none.json does not exist")


def test_a_bad_value_is_refused_before_anything_is_resolved(env, tmp_path):
    done = cli("lock", "build-base", "-v", "3.99", "-o", str(tmp_path / "l.json"), env=env)
    assert_one_error(done, "-v/--python-version 3.99")
    assert not (tmp_path / "l.json").exists()


def test_the_build_tasks_config_section_reaches_lock_task(env, tmp_path):
    """`lock build-base` reads build_base's section, as the build would: here its bad value."""
    (tmp_path / "musa_docker.yaml").write_text('build_base:\n  python_version: "3.99"\n')
    done = cli("lock", "build-base", "-o", str(tmp_path / "l.json"), env=env, cwd=tmp_path)
    assert_one_error(done, "3.99")
