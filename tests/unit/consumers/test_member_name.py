"""A worker's static member name: the lowest slot of its group that no live process
of this host holds, named ``<hostname>-<n>``."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from consumers.member_name import claim, members_dir
from jobpipe.errors import ConfigError

ROOT = Path(__file__).resolve().parents[3]
# A process that claims a slot, says which, and holds it until killed.
HOLDER = ("import sys, time\n"
          "from pathlib import Path\n"
          "from consumers.member_name import claim\n"
          "slot = claim(sys.argv[1], Path(sys.argv[2]))\n"
          "print(slot.index, flush=True)\n"
          "time.sleep(600)\n")


def test_two_claims_in_one_process_get_different_slots(tmp_path: Path) -> None:
    first, second = claim("ns.workers", tmp_path), claim("ns.workers", tmp_path)
    assert (first.index, second.index) == (0, 1)
    host = socket.gethostname()
    assert (first.name, second.name) == (f"{host}-0", f"{host}-1")


def test_a_released_slot_is_claimed_again(tmp_path: Path) -> None:
    first, second = claim("ns.workers", tmp_path), claim("ns.workers", tmp_path)
    first.release()
    first.release()  # a second release is harmless
    assert claim("ns.workers", tmp_path).index == 0
    assert second.index == 1


def test_groups_have_slots_of_their_own(tmp_path: Path) -> None:
    held = claim("a.workers", tmp_path)
    other = claim("b.workers", tmp_path)
    assert (held.index, other.index) == (0, 0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.workers.0.lock",
                                                          "b.workers.0.lock"]


def test_a_released_slot_leaves_no_lock_file_behind(tmp_path: Path) -> None:
    first, second = claim("ns.workers", tmp_path), claim("ns.workers", tmp_path)
    first.release()
    assert [p.name for p in tmp_path.iterdir()] == ["ns.workers.1.lock"]
    del second  # garbage: released too
    assert list(tmp_path.iterdir()) == []


def test_a_forked_child_letting_go_leaves_its_parents_slot_held(tmp_path: Path) -> None:
    held = claim("ns.workers", tmp_path)
    pid = os.fork()
    if pid == 0:  # the child (as a handler's subprocess would): release, then exit
        held.release()
        os._exit(0)
    assert os.waitpid(pid, 0)[1] == 0
    assert (tmp_path / "ns.workers.0.lock").exists()
    assert claim("ns.workers", tmp_path).index == 1  # the parent still holds slot 0
    held.release()


def test_the_slot_of_a_process_killed_9_is_free_again(tmp_path: Path) -> None:
    with subprocess.Popen([sys.executable, "-c", HOLDER, "ns.workers", str(tmp_path)],
                          cwd=ROOT, stdout=subprocess.PIPE, text=True) as holder:
        try:
            assert holder.stdout is not None
            assert holder.stdout.readline().strip() == "0"  # it holds slot 0 (blocks till then)
            assert claim("ns.workers", tmp_path).index == 1
            os.kill(holder.pid, signal.SIGKILL)
            holder.wait()
            assert claim("ns.workers", tmp_path).index == 0  # what a restarted worker gets
        finally:
            if holder.poll() is None:
                holder.kill()


def test_the_lock_directory_is_this_users_alone(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    directory = members_dir()
    assert directory == tmp_path / f"jobpipe-{os.getuid()}" / "members"
    assert claim("ns.workers").index == 0
    for made in (directory, directory.parent):
        assert made.stat().st_mode & 0o777 == 0o700


def test_a_lock_directory_others_may_write_is_refused(tmp_path: Path) -> None:
    shared = tmp_path / "members"
    shared.mkdir()
    shared.chmod(0o777)
    with pytest.raises(ConfigError, match="is not a directory of this user's alone"):
        claim("ns.workers", shared)
