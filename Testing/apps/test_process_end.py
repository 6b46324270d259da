"""A command's process ends once its work is done (``end_process``): the ``atexit`` handlers run, the
standard streams are flushed, the exit status is kept, and only the interpreter's teardown (freeing every
module and object, about 0.15 s of an ``analyze``) is left out; a thread still running is waited for."""

from __future__ import annotations

from importlib.metadata import entry_points

from conftest import run_python

SCRIPT = """
import atexit, sys, threading, time
from pathlib import Path
from CardiacMTLApps.cli.startup import end_process

out = Path(sys.argv[1])


class Teardown:
    def __del__(self):
        (out / "teardown").write_text("ran")


keep = Teardown()  # freed only by the interpreter's teardown
atexit.register(lambda: (out / "atexit").write_text("ran"))
if sys.argv[2] == "thread":
    threading.Thread(target=lambda: (time.sleep(0.5), (out / "thread").write_text("done"))).start()
sys.stdout.write("no newline: still in the buffer")
sys.stderr.write("to stderr")
end_process(3)
"""


def test_the_process_ends_with_its_status_its_exit_handlers_run_and_its_output_flushed(tmp_path):
    done = run_python(["-c", SCRIPT, str(tmp_path), "plain"], tmp_path)
    assert done.returncode == 3, done.stderr
    assert done.stdout == "no newline: still in the buffer" and done.stderr == "to stderr"
    assert (tmp_path / "atexit").read_text() == "ran"
    assert not (tmp_path / "teardown").exists()  # the interpreter's teardown was left out


def test_a_thread_still_running_is_waited_for(tmp_path):
    done = run_python(["-c", SCRIPT, str(tmp_path), "thread"], tmp_path)
    assert done.returncode == 3, done.stderr
    assert (tmp_path / "thread").read_text() == "done"
    assert (tmp_path / "atexit").read_text() == "ran" and done.stdout == "no newline: still in the buffer"


def test_the_command_writes_everything_and_reports_its_status(small_cine, tmp_path):
    out = tmp_path / "out"
    done = run_python(
        ["-m", "CardiacMTLApps.cli.mtl", "analyze", str(small_cine), "--out", str(out)], tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.rstrip().endswith(f"results written to {out}"), done.stdout
    written = {p.name for p in out.iterdir()}
    assert {"indices.json", "indices.csv", "report.png", "segmentation"} <= written, written
    assert (out / "report.png").read_bytes().startswith(b"\x89PNG")

    failed = run_python(
        [
            "-m",
            "CardiacMTLApps.cli.mtl",
            "analyze",
            str(tmp_path / "missing.nii.gz"),
            "--out",
            str(tmp_path / "o"),
        ],
        tmp_path,
    )
    assert failed.returncode != 0 and "missing.nii.gz" in failed.stderr, failed.stderr
    assert "Traceback" not in failed.stderr and not (tmp_path / "o").exists()


def test_the_installed_commands_end_through_run():
    commands = {"cardiac-mtl", "cardiac-train", "cardiac-atlas"}
    scripts = {e.name: e for e in entry_points(group="console_scripts") if e.name in commands}
    assert set(scripts) == commands, scripts
    for entry in scripts.values():
        assert entry.value.endswith(":run") and callable(entry.load()), entry.value
