from conftest import HOST, python


def test_the_prompt_is_a_live_node_and_reads_piped_input():
    r = python("", args=["--sname", "shell_t", "--cookie", "c"],
               stdin="Node.self()\nNode.alive()\nself()\n1 + 1\n")
    assert r.returncode == 0, r.stderr
    assert f"pydist shell on node shell_t@{HOST}" in r.stdout
    assert f"'shell_t@{HOST}'" in r.stdout and "True" in r.stdout and "#PID<0." in r.stdout
    assert f"pydist(shell_t@{HOST})> " in r.stdout


def test_the_prompt_with_a_long_name():
    r = python("", args=["--name", "shell_l@127.0.0.1"], stdin="Node.self()\n")
    assert "'shell_l@127.0.0.1'" in r.stdout, r.stdout + r.stderr


def test_a_long_name_without_a_host_is_refused_with_the_fix():
    r = python("", args=["--name", "gus"])
    assert r.returncode != 0 and "gus@127.0.0.1" in r.stderr


def test_errors_at_the_prompt_do_not_end_it():
    r = python("", args=["--sname", "shell_e"], stdin="1/0\nprint('still here')\n")
    assert "ZeroDivisionError" in r.stderr and "still here" in r.stdout


def test_without_arguments_it_explains_itself():
    r = python("", args=[])
    assert r.returncode == 2 and "--sname" in r.stdout


def test_the_console_script_is_installed_beside_python():
    import os
    import subprocess
    import sys
    script = os.path.join(os.path.dirname(sys.executable), "pydist")
    assert os.path.exists(script), "pip install -e . installs the `pydist` command"
    r = subprocess.run([script, "--sname", "script_t"], input="Node.alive()\n",
                       capture_output=True, text=True, timeout=30, check=False)
    assert "True" in r.stdout, r.stdout + r.stderr
