"""The mount's list of areas (fusemount.fs.Filesystem._read_areas): reads of it may overlap,
one told of a change and one a request's; an older answer must not undo a newer one."""

import threading
from pathlib import Path

import trio

from fusemount.fs import Filesystem

OLD = {"docs": ("/old/docs", "real")}
NEW = {"docs": ("/new/docs", "real"), "music": ("/new/music", "unreal")}


def test_an_older_answer_that_comes_in_later_is_not_kept(tmp_path, settings):
    settings.REALIZE_HOME = tmp_path
    asked, release = threading.Event(), threading.Event()
    answers = iter([OLD, NEW])

    def load_areas():
        answer = next(answers)
        if answer is OLD:
            asked.set()
            release.wait(10)  # the first read's query is slow
        return answer

    fs = Filesystem(load_areas)

    async def main():
        async with trio.open_nursery() as nursery:
            nursery.start_soon(fs._read_areas)
            await trio.to_thread.run_sync(asked.wait, 10)  # the first read waits on its query
            await fs._read_areas()  # a second read, asked later, comes in first
            assert fs._areas.paths == {"docs": Path("/new/docs"), "music": Path("/new/music")}
            release.set()
        assert fs._areas.paths == {"docs": Path("/new/docs"), "music": Path("/new/music")}
        assert fs._areas.unreal == {"music"}

    trio.run(main)
