"""The connectors' checkpoint store: durable across reopen, atomic, and it remembers sent ids."""

from __future__ import annotations

import multiprocessing
import os
from pathlib import Path

import pytest

from producers.connectors.checkpoints import FILE_NAME, Checkpoints
from producers.connectors.imap import _is_change, checkpoint_keys
from shinrai.errors import ConfigError

pytestmark = pytest.mark.unit


def test_values_survive_a_reopen_and_are_kept_per_source(tmp_path: Path) -> None:
    with Checkpoints(tmp_path) as store:
        assert store.get("support", "INBOX:uid") is None
        store.put("support", "INBOX:uid", "41")
        store.put("support", "INBOX:uid", "42")  # an update, not a second row
        store.put("sales", "INBOX:uid", "7")
        store.put("hanako", "sync-token", "http://radicale/sync/3")
    with Checkpoints(tmp_path) as store:
        assert store.get("support", "INBOX:uid") == "42"
        assert store.get("sales", "INBOX:uid") == "7"
        assert store.get("hanako", "sync-token") == "http://radicale/sync/3"
        store.delete("hanako", "sync-token")
        assert store.get("hanako", "sync-token") is None
    assert (tmp_path / FILE_NAME).is_file()


def test_a_commit_stores_the_uid_and_the_published_ids_together(tmp_path: Path) -> None:
    validity, uid = checkpoint_keys("Sent")
    ids = [f"email:{n:032x}" for n in range(1200)]  # more than one lookup chunk
    with Checkpoints(tmp_path) as store:
        store.commit("support", {validity: "99", uid: "1200"}, published=ids)
        assert store.published([*ids[:3], "email:never", ids[-1]]) == {*ids[:3], ids[-1]}
        assert store.published(ids) == set(ids)
        assert store.get("support", uid) == "1200"


def test_a_failing_commit_changes_nothing(tmp_path: Path) -> None:
    with Checkpoints(tmp_path) as store:
        store.commit("support", {"INBOX:uid": "5"}, published=["email:a"])

        def ids_then_failure() -> object:
            yield "email:b"
            raise RuntimeError("the batch iterator broke half-way")

        with pytest.raises(RuntimeError):
            store.commit("support", {"INBOX:uid": "9"}, published=ids_then_failure())  # type: ignore[arg-type]
        assert store.get("support", "INBOX:uid") == "5"
        assert store.published(["email:a", "email:b"]) == {"email:a"}


def _commit_then_die(path: str) -> None:
    store = Checkpoints(Path(path))
    store.commit("support", {"INBOX:uid": "77"}, published=["email:x"])
    os._exit(9)  # no close, no flush at exit: what kill -9 leaves behind


def test_a_commit_is_on_disk_when_the_process_dies_right_after_it(tmp_path: Path) -> None:
    child = multiprocessing.get_context("spawn").Process(
        target=_commit_then_die, args=(str(tmp_path),)
    )
    child.start()
    child.join(timeout=60)
    assert child.exitcode == 9
    with Checkpoints(tmp_path) as store:
        assert store.get("support", "INBOX:uid") == "77"
        assert store.published(["email:x"]) == {"email:x"}


def test_an_unusable_state_dir_is_one_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(ConfigError, match=r"state_dir .*cannot open the checkpoint store"):
        Checkpoints(blocker / "state")


@pytest.mark.parametrize(
    ("response", "wakes"),
    [
        ((3, b"EXISTS"), True),
        ((2, b"EXPUNGE"), True),
        ((b"NO", b"Internal error occurred."), True),  # Dovecot: the folder was deleted
        ((b"BYE", b"Server", b"shutting", b"down."), True),
        ((b"OK", b"Still here"), False),
        ((1, b"FETCH", (b"FLAGS", (b"\\Seen",))), False),  # a flag change is not new mail
    ],
)
def test_which_idle_responses_start_a_sync(response: tuple[object, ...], wakes: bool) -> None:
    assert _is_change(response) is wakes
