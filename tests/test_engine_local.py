"""The local engine: a run's outcome when its process ends, and a run another process holds followed, not restarted."""
from fvae_lib.engine_local import LocalEngine, WorkerDied, run_outcome
from fvae_lib.sweep import SweepSpec


class Handle:
    """What run_outcome reads of a run: done(), then result() (which raises if the process died)."""

    def __init__(self, done, result=None, error=None):
        self._done, self._result, self._error = done, result, error

    def done(self):
        return self._done

    def result(self):
        if self._error:
            raise self._error
        return self._result


def test_an_outcome_is_none_while_running_the_result_when_done_and_a_failure_when_the_process_died():
    assert run_outcome(Handle(False), str) is None
    assert run_outcome(Handle(True, {"status": "finished"}), str) == {"status": "finished"}
    died = run_outcome(Handle(True, error=WorkerDied("killed by signal 9")), lambda err: f"it died ({err})")
    assert died == {"status": "failed", "error": "it died (killed by signal 9)"}


def test_a_run_another_process_holds_is_followed_and_fails_if_that_process_ends_before_it_is_done(tmp_path, holder):
    [task] = SweepSpec.from_dict({"grid": {"betavae": [4]}, "preset": "smoke"}).tasks(tmp_path)
    engine = LocalEngine(workers=1)
    assert engine.attach(task) is None  # nobody holds it: the driver starts it
    other = holder(task["folder"])
    attached = engine.attach(task)
    assert attached is not None and attached.holder["pid"] == other.pid
    assert not attached.done() and engine.outcome(attached) is None
    other.kill()
    other.wait()
    assert attached.done()
    outcome = engine.outcome(attached)
    assert outcome["status"] == "failed" and f"process {other.pid}" in outcome["error"] and "run the sweep again" in outcome["error"]
