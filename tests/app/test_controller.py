"""Controller + worker against the fake core: queue, progress, cancel, errors."""

from __future__ import annotations

import threading
import time

import pytest
from PyQt5.QtGui import QImage

from app.controller import KEPT_RESULTS
from app.jobs import JobStatus, output_name, unique_path
from tests.app.conftest import make_image

SIGNAL_TIMEOUT = 5000


def _ready(qtbot, controller):
    with qtbot.waitSignal(
        controller.model_state_changed, timeout=SIGNAL_TIMEOUT
    ) as blocker:
        controller.load_model()
    # The first emit is "loading" (synchronous); wait for the pool's answer.
    if blocker.args[0] == "loading":
        qtbot.waitUntil(
            lambda: controller.model_state != "loading", timeout=SIGNAL_TIMEOUT
        )
    assert controller.model_state == "ready"


def test_missing_weights_gives_missing_state(qtbot, controller, fake_core):
    fake_core.missing_weights = True
    states = []
    controller.model_state_changed.connect(lambda s, t: states.append((s, t)))
    controller.load_model()
    qtbot.waitUntil(lambda: len(states) == 2, timeout=SIGNAL_TIMEOUT)
    assert states[0][0] == "loading"
    assert states[1][0] == "missing"
    assert "No weights" in states[1][1]
    assert controller.model is None


def test_single_image_runs_with_progress(qtbot, controller, image_file):
    _ready(qtbot, controller)
    controller.open_paths([image_file])
    assert controller.document.input_size == (48, 32)
    assert controller.output_size_for("x2") == (96, 64)
    assert controller.output_size_for("1024") == (1024, 683)
    steps = []
    controller.progressed.connect(lambda d, t: steps.append((d, t)))
    with qtbot.waitSignal(controller.result_changed, timeout=SIGNAL_TIMEOUT) as blocker:
        assert controller.submit("x2")
    doc = blocker.args[0]
    assert doc.result_size == (96, 64)
    assert steps[0] == (0, 4) and steps[-1] == (4, 4)
    assert not controller.busy
    assert controller.jobs[-1].status == JobStatus.DONE


def test_cancel_stops_and_closes_generator(qtbot, controller, fake_core, image_file):
    fake_core.tiles, fake_core.delay = 50, 0.05
    _ready(qtbot, controller)
    controller.open_paths([image_file])
    with qtbot.waitSignal(controller.progressed, timeout=SIGNAL_TIMEOUT):
        controller.submit("x2")
    assert controller.busy
    with qtbot.waitSignal(controller.busy_changed, timeout=1500) as blocker:
        controller.cancel()
    assert blocker.args == [False]
    assert controller.jobs[-1].status == JobStatus.CANCELLED
    assert fake_core.closed == 1


def _two_image_folder(tmp_path):
    """An input folder with one.png and two.png, and an empty output folder."""
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    out.mkdir()
    make_image(src / "one.png")
    make_image(src / "two.png")
    return src, out


def _cancel_after_last_tile(qtbot, controller):
    """Cancel once the last tile's step has arrived, while the job stitches."""
    steps = []
    controller.progressed.connect(lambda done, total: steps.append((done, total)))
    qtbot.waitUntil(
        lambda: bool(steps) and steps[-1][0] == steps[-1][1] > 0, timeout=SIGNAL_TIMEOUT
    )
    with qtbot.waitSignal(controller.busy_changed, timeout=SIGNAL_TIMEOUT) as blocker:
        controller.cancel()
    assert blocker.args == [False]


def test_cancel_during_the_last_tile_shows_no_result(
    qtbot, controller, fake_core, image_file
):
    fake_core.tiles, fake_core.finish_delay = 3, 0.6
    _ready(qtbot, controller)
    controller.open_paths([image_file])
    results = []
    controller.result_changed.connect(lambda d: results.append(d.result_size))
    controller.submit("x2")
    _cancel_after_last_tile(qtbot, controller)
    qtbot.wait(100)
    assert controller.jobs[-1].status == JobStatus.CANCELLED
    assert controller.jobs[-1].result is None
    assert results == []


def test_cancel_during_the_last_tile_writes_no_batch_file(
    qtbot, controller, fake_core, tmp_path
):
    fake_core.tiles, fake_core.finish_delay = 3, 0.6
    src, out = _two_image_folder(tmp_path)
    _ready(qtbot, controller)
    controller.open_paths([src])
    controller.submit("x2", batch_dir=out)
    _cancel_after_last_tile(qtbot, controller)
    qtbot.wait(100)
    assert [j.status for j in controller.jobs] == [JobStatus.CANCELLED] * 2
    assert list(out.iterdir()) == []


def test_second_drop_while_running_is_queued(qtbot, controller, fake_core, tmp_path):
    fake_core.tiles, fake_core.delay = 6, 0.02
    a = make_image(tmp_path / "a.png")
    b = make_image(tmp_path / "b.png", (32, 32))
    _ready(qtbot, controller)
    controller.open_paths([a])
    controller.submit("x2")
    assert controller.busy
    controller.open_paths([b], size_key="x3")
    assert [j.status for j in controller.jobs] == [JobStatus.RUNNING, JobStatus.WAITING]
    results = []
    controller.result_changed.connect(lambda d: results.append(d.result_size))
    qtbot.waitUntil(lambda: len(results) == 2, timeout=SIGNAL_TIMEOUT)
    assert results == [(96, 64), (96, 96)]


def test_files_given_a_folder_run_even_if_the_job_before_ended(
    qtbot, controller, tmp_path
):
    # The window asks for the folder while busy; the job may end meanwhile.
    src, out = _two_image_folder(tmp_path)
    _ready(qtbot, controller)
    assert not controller.busy
    with qtbot.waitSignal(controller.batch_finished, timeout=SIGNAL_TIMEOUT) as blocker:
        controller.open_paths([src], "x2", batch_dir=out)
    assert blocker.args == [2, 0]
    assert sorted(p.name for p in out.iterdir()) == ["one_96x64.png", "two_96x64.png"]


def test_batch_with_a_bad_file(qtbot, controller, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    make_image(src / "one.png")
    (src / "two.png").write_bytes(b"not really a png")
    make_image(src / "three.png")
    out = tmp_path / "out"
    out.mkdir()
    (out / "one_96x64.png").write_bytes(b"taken")
    _ready(qtbot, controller)
    controller.open_paths([src])
    assert len(controller.staged_jobs()) == 3
    assert not controller.submit("x2")  # a batch needs an output folder
    with qtbot.waitSignal(controller.batch_finished, timeout=SIGNAL_TIMEOUT) as blocker:
        controller.submit("x2", batch_dir=out)
    assert blocker.args == [2, 1]
    by_name = {j.name: j for j in controller.jobs}
    assert by_name["two.png"].status == JobStatus.FAILED
    assert "not an image" in by_name["two.png"].message
    assert sorted(p.name for p in out.iterdir()) == [
        "one_96x64-2.png",
        "one_96x64.png",
        "three_96x64.png",
    ]
    assert (out / "one_96x64.png").read_bytes() == b"taken"


def test_batch_into_a_folder_it_cannot_write_stops_early(
    qtbot, controller, fake_core, tmp_path
):
    src = tmp_path / "in"
    src.mkdir()
    for name in ("a.png", "b.png", "c.png"):
        make_image(src / name)
    _ready(qtbot, controller)
    controller.open_paths([src])
    errors = []
    controller.error.connect(lambda title, text: errors.append((title, text)))
    assert not controller.submit("x2", batch_dir=tmp_path / "gone")  # checked first
    assert errors[-1][0] == "Cannot save there" and "gone" in errors[-1][1]
    assert len(controller.staged_jobs()) == 3

    out = tmp_path / "out"
    out.mkdir()
    fake_core.tiles, fake_core.delay = 4, 0.05
    assert controller.submit("x2", batch_dir=out)
    out.rmdir()  # the drive goes away while the first image runs
    with qtbot.waitSignal(controller.batch_finished, timeout=SIGNAL_TIMEOUT):
        pass
    statuses = [j.status for j in controller.jobs]
    assert statuses == [JobStatus.FAILED, JobStatus.CANCELLED, JobStatus.CANCELLED]
    assert controller.jobs[1].message.startswith("not run: Could not write")
    assert errors[-1][0] == "Cannot save the image"


def test_batch_image_too_large_for_its_format_fails_alone_before_upscaling(
    qtbot, controller, fake_core, tmp_path
):
    src = tmp_path / "in"
    src.mkdir()
    make_image(src / "a_wide.png", size=(4096, 8))  # x4: 16384 px, WebP holds 16383
    make_image(src / "b.png")
    make_image(src / "c.png")
    upscaled = []
    real_iter = fake_core.iter_upscale

    def recording_iter(pixels, model, options=None):
        upscaled.append(pixels.shape[1])
        return real_iter(pixels, model, options)

    fake_core.iter_upscale = recording_iter
    _ready(qtbot, controller)
    controller.open_paths([src])
    out = tmp_path / "out"
    out.mkdir()
    assert controller.submit("x4", batch_dir=out, export_format="webp")
    with qtbot.waitSignal(controller.batch_finished, timeout=SIGNAL_TIMEOUT):
        pass
    by_name = {j.name: j for j in controller.jobs}
    assert by_name["a_wide.png"].status == JobStatus.FAILED
    assert "WEBP holds at most 16383 px" in by_name["a_wide.png"].message
    assert by_name["b.png"].status == by_name["c.png"].status == JobStatus.DONE
    assert sorted(p.name for p in out.iterdir()) == ["b_192x128.webp", "c_192x128.webp"]
    assert upscaled == [48, 48]  # the wide one was refused before any work


def test_unreadable_single_file_is_an_error_not_a_crash(qtbot, controller, tmp_path):
    bad = tmp_path / "notes.txt"
    bad.write_text("hello")
    with qtbot.waitSignal(controller.error, timeout=1000) as blocker:
        controller.open_paths([bad])
    assert blocker.args[0] == "Cannot use this image"
    assert controller.document is None


def test_export_never_clobbers(qtbot, controller, image_file, tmp_path):
    _ready(qtbot, controller)
    controller.open_paths([image_file])
    with qtbot.waitSignal(controller.result_changed, timeout=SIGNAL_TIMEOUT):
        controller.submit("x2")
    assert controller.default_export_name("jpg") == "small_96x64.jpg"
    target = tmp_path / controller.default_export_name("png")
    assert controller.export(target) == target
    assert controller.export_conflict(target) == "exists"
    assert controller.export_conflict(image_file) == "source"
    with qtbot.waitSignal(controller.error, timeout=1000) as blocker:
        assert controller.export(target) is None
    assert blocker.args[0] == "File already exists"
    assert controller.export(target, overwrite=True) == target


def test_naming_helpers(tmp_path):
    assert output_name("cat", (200, 100), "tiff") == "cat_200x100.tiff"
    p = tmp_path / "x.png"
    assert unique_path(p) == p
    p.write_bytes(b"")
    assert unique_path(p) == tmp_path / "x-2.png"


@pytest.mark.parametrize(
    "key,kind,value",
    [("auto", "longest", 1024.0), ("1280", "longest", 1280.0), ("x3", "scale", 3.0)],
)
def test_targets(controller, key, kind, value):
    t = controller.target_for(key)  # auto: the fake core's 1024 px rule
    assert (t.kind, t.value) == (kind, value)


def test_memory_tuned_before_workers_and_released_when_idle(
    qtbot, controller, fake_core, image_file
):
    controller._release_timer.setInterval(50)
    _ready(qtbot, controller)
    assert fake_core.allocator_tuned
    controller.open_paths([image_file])
    with qtbot.waitSignal(controller.result_changed, timeout=SIGNAL_TIMEOUT):
        assert controller.submit("x2")
    qtbot.waitUntil(lambda: fake_core.memory_released == 1, timeout=SIGNAL_TIMEOUT)


def test_memory_kept_while_the_queue_is_busy(
    qtbot, controller, fake_core, tmp_path, monkeypatch
):
    fake_core.delay = 0.05
    controller._release_timer.setInterval(0)
    busy_at_release = []
    monkeypatch.setattr(
        fake_core,
        "release_free_memory",
        lambda: busy_at_release.append(controller.busy),
    )
    _ready(qtbot, controller)
    controller.open_paths([make_image(tmp_path / "a.png")])
    assert controller.submit("x2")
    controller.open_paths([make_image(tmp_path / "b.png")], size_key="x2")
    qtbot.waitUntil(
        lambda: [j.status for j in controller.jobs] == [JobStatus.DONE] * 2,
        timeout=SIGNAL_TIMEOUT,
    )
    qtbot.waitUntil(lambda: busy_at_release == [False], timeout=SIGNAL_TIMEOUT)
    qtbot.wait(50)
    # The first job's end fired the timer while the second ran: no release then.
    assert busy_at_release == [False]


def test_failed_switch_keeps_the_working_model_and_runs_waiting_jobs(
    qtbot, controller, image_file, tmp_path
):
    _ready(qtbot, controller)
    working = controller.model
    errors = []
    controller.error.connect(lambda title, text: errors.append((title, text)))
    controller.load_model(tmp_path / "mismatched.safetensors")
    controller.open_paths([image_file])
    assert controller.submit("x2")  # waits for the load
    with qtbot.waitSignal(controller.result_changed, timeout=SIGNAL_TIMEOUT):
        pass
    assert controller.model is working and controller.model_state == "ready"
    assert controller.weights_path is None  # still the shipped weights
    assert errors and errors[0][0] == "Cannot load the model"
    assert "Still using fake-nearest" in errors[0][1]


def test_clear_list_keeps_the_running_and_queued_jobs(
    qtbot, controller, fake_core, tmp_path
):
    fake_core.tiles, fake_core.delay = 8, 0.05
    _ready(qtbot, controller)
    a, b = make_image(tmp_path / "a.png"), make_image(tmp_path / "b.png")
    controller.open_paths([a])
    controller.submit("x2")
    controller.open_paths([b])  # queued behind a
    controller.clear_list()
    assert [j.status for j in controller.jobs] == [JobStatus.RUNNING, JobStatus.WAITING]
    qtbot.waitUntil(lambda: not controller.busy, timeout=SIGNAL_TIMEOUT)
    assert [j.status for j in controller.jobs] == [JobStatus.DONE, JobStatus.DONE]
    controller.clear_list()
    assert controller.jobs == []


def test_only_the_last_results_stay_in_memory(qtbot, controller, tmp_path):
    _ready(qtbot, controller)
    for n in range(KEPT_RESULTS + 2):
        controller.open_paths([make_image(tmp_path / f"p{n}.png")])
        with qtbot.waitSignal(controller.result_changed, timeout=SIGNAL_TIMEOUT):
            controller.submit("x2")
    jobs = controller.jobs
    assert [j.result is not None for j in jobs] == [False] * 2 + [True] * KEPT_RESULTS
    notices = []
    controller.notice.connect(notices.append)
    assert not controller.show_job(jobs[0].id)
    assert "p0.png again" in notices[-1]
    assert controller.show_job(jobs[2].id) and controller.document.name == "p2.png"


def test_auto_size_is_measured_once_per_model_not_per_job(
    qtbot, controller, fake_core, tmp_path
):
    sides = iter([1024, 1280, 1024, 1280, 1024])
    fake_core.auto_longest_side = lambda device="cpu": next(sides)
    src = tmp_path / "in"
    src.mkdir()
    for name in ("a.png", "b.png", "c.png"):
        make_image(src / name)
    _ready(qtbot, controller)
    controller.open_paths([src])
    out = tmp_path / "out"
    out.mkdir()
    assert controller.submit("auto", batch_dir=out)
    with qtbot.waitSignal(controller.batch_finished, timeout=SIGNAL_TIMEOUT):
        pass
    assert sorted(p.name for p in out.iterdir()) == [
        "a_1024x683.png",
        "b_1024x683.png",
        "c_1024x683.png",
    ]


def test_a_big_file_is_decoded_off_the_gui_thread(
    qtbot, controller, fake_core, tmp_path, monkeypatch
):
    monkeypatch.setattr("app.controller.BACKGROUND_OPEN_BYTES", 0)  # all are big
    src = make_image(tmp_path / "big.png")
    gui_thread = threading.get_ident()
    read_on = []
    real_read = fake_core.read_image

    def slow_read(path):
        read_on.append(threading.get_ident())
        time.sleep(0.2)
        return real_read(path)

    fake_core.read_image = slow_read
    _ready(qtbot, controller)
    notices = []
    controller.notice.connect(notices.append)
    with qtbot.waitSignal(controller.input_changed, timeout=SIGNAL_TIMEOUT):
        controller.open_paths([src])
        assert controller.opening and controller.document is None  # not blocked
        assert not controller.submit("x2")  # nothing to run until it shows
    assert read_on and read_on[0] != gui_thread
    assert not controller.opening and controller.document.name == "big.png"
    assert notices[0] == "Opening big.png…" and notices[-1] == ""  # then cleared


def test_a_later_open_supersedes_a_big_file_still_decoding(
    qtbot, controller, fake_core, tmp_path, monkeypatch
):
    big, small = make_image(tmp_path / "big.png"), make_image(tmp_path / "small.png")
    monkeypatch.setattr("app.controller._is_big", lambda path: path == big)
    real_read = fake_core.read_image

    def read(path):
        if path == big:
            time.sleep(0.3)
        return real_read(path)

    fake_core.read_image = read
    _ready(qtbot, controller)
    shown = []
    controller.input_changed.connect(lambda doc: shown.append(doc.name))
    controller.open_paths([big])
    controller.open_paths([small])  # at once, while big.png decodes
    assert shown == ["small.png"]
    controller.open_paths([big])
    assert controller.paste_image(QImage(8, 8, QImage.Format_RGB32), "pasted.png")
    assert shown == ["small.png", "pasted.png"]
    qtbot.waitUntil(lambda: controller.pool.activeThreadCount() == 0)
    qtbot.wait(50)  # the finished signal's delivery
    assert shown == ["small.png", "pasted.png"]
    assert controller.document.name == "pasted.png"


def test_big_is_judged_by_file_size_or_header_pixels(tmp_path, monkeypatch):
    from PIL import Image

    from app.controller import _is_big

    flat = tmp_path / "flat.png"  # 20 MP that compresses to a few KB
    Image.new("L", (5000, 4000), 128).save(flat)
    assert flat.stat().st_size < 1_000_000 and _is_big(flat)
    small = make_image(tmp_path / "small.png")
    assert not _is_big(small)
    monkeypatch.setattr("app.controller.BACKGROUND_OPEN_BYTES", 100)
    assert _is_big(small)
    assert not _is_big(tmp_path / "missing.png")  # the read reports it
