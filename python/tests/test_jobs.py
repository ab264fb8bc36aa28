"""The SDK against a real broker and provider: jobs."""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest

import computenet
from computenet import JobSpec, JobState, Priority

WAIT = 120  # seconds; a bound for a stuck test, not a timing assertion


def test_submit_and_wait(alice: computenet.Client) -> None:
    job = alice.submit(command=["sh", "-c", "echo hello from $CUDA_VISIBLE_DEVICES"],
                       name="hello", models=["A800"], cards=2,
                       max_duration_s=60)
    assert job.id.startswith("hub-")
    assert job.submitted_state in (JobState.QUEUED, JobState.PLACED)
    info = job.wait(timeout=WAIT)
    assert info.state is JobState.SUCCEEDED
    assert info.succeeded and info.terminal
    assert info.exit_code == 0
    assert info.provider == "site-a"
    assert info.model == "A800"
    assert len(info.assignments) == 1
    assert len(info.assignments[0].device_indices) == 2
    assert info.consumer == "alice"
    assert info.finished is not None and info.finished >= info.created
    assert job.status() == info

    failed = alice.submit(JobSpec(["sh", "-c", "exit 4"], max_duration_s=60))
    info = failed.wait(timeout=WAIT)
    assert info.state is JobState.FAILED
    assert info.exit_code == 4

    listed = {j.job_id: j.state for j in alice.jobs()}
    assert listed[job.id] is JobState.SUCCEEDED
    assert listed[failed.id] is JobState.FAILED
    assert [j.job_id for j in alice.jobs(state="failed")] == [failed.id]
    assert {j.job_id for j in alice.jobs(state=[JobState.SUCCEEDED,
                                                JobState.FAILED])} >= {job.id, failed.id}


def test_idempotency_key_returns_the_first_job(alice: computenet.Client) -> None:
    first = alice.submit(command=["true"], max_duration_s=60,
                         idempotency_key="py-once")
    again = alice.submit(command=["true"], max_duration_s=60,
                         idempotency_key="py-once")
    assert again.id == first.id
    assert again.duplicate and not first.duplicate
    assert first.wait(timeout=WAIT).succeeded


# Each request form, as given, read back as the broker holds it; each is
# placed on site-w (region west: H800 gang fabric, 910B node) and runs.
FORMS = [
    dict(name="gang", models=["H800|A800"], cards=8, nodes=2,
         regions=["west", "east"], preferred_regions=["east"],
         excluded_providers=["site-x"], max_price_per_card_hour=2000,
         min_memory_mib=65536, cpu_milli_per_card=4000,
         host_memory_mib_per_card=32768, priority="high", max_attempts=5,
         env={"SEED": "7", "MODE": "pretrain"}, max_duration_s=120),
    dict(name="equivalence", a100_equivalents="2.5",
         vendor_classes=["domestic"], regions=["west"],
         max_price_per_a100_hour=900, max_duration_s=600),
    dict(name="fraction", gpu_milli=500, preemptible=True,
         priority=Priority.LOW, regions="west", max_duration_s=60),
    dict(name="float-equivalents", a100_equivalents=8, models=["910B"],
         regions=["west"], max_duration_s=60),
]

EXPECTED = {
    "gang": dict(models=["H800", "A800"], cards=8, nodes=2, regions=["west", "east"],
                 preferred_regions=["east"],
                 excluded_providers=["site-x"], max_price_per_card_hour=2000,
                 min_memory_mib=65536, cpu_milli_per_card=4000,
                 host_memory_mib_per_card=32768, priority=Priority.HIGH,
                 max_attempts=5, env={"SEED": "7", "MODE": "pretrain"},
                 max_duration_s=120, a100_equivalents=None, gpu_milli=0,
                 preemptible=False),
    "equivalence": dict(a100_equivalents=Decimal("2.5"), cards=0, nodes=0,
                        vendor_classes=["domestic"], regions=["west"],
                        max_price_per_a100_hour=900, max_duration_s=600,
                        priority=None),
    "fraction": dict(gpu_milli=500, cards=1, nodes=1, preemptible=True,
                     priority=Priority.LOW, regions=["west"],
                     max_duration_s=60),
    "float-equivalents": dict(a100_equivalents=8, cards=0, models=["910B"]),
}


@pytest.mark.parametrize("form", FORMS, ids=[f["name"] for f in FORMS])
def test_every_request_form_reaches_the_broker_as_given(
        alice: computenet.Client, form: dict) -> None:
    job = alice.submit(command=["echo", form["name"]], **form)
    for info in (job.status(), job.wait(timeout=WAIT)):
        assert info.spec.name == form["name"]
        assert info.spec.command == ["echo", form["name"]]
        for key, value in EXPECTED[form["name"]].items():
            assert getattr(info.spec, key) == value, key
    assert info.succeeded
    assert info.provider == "site-w"


def test_a_spec_and_keywords_combine(alice: computenet.Client) -> None:
    base = JobSpec(["echo", "x"], regions=["west"], max_duration_s=60)
    job = alice.submit(base, name="override", cards=3)
    spec = job.wait(timeout=WAIT).spec
    assert (spec.name, spec.cards, spec.regions) == ("override", 3, ["west"])
    assert base.name == ""  # the spec given is not changed


def test_malformed_requests_raise_invalid_argument(
        alice: computenet.Client) -> None:
    # Caught by the request forms before anything is sent.
    with pytest.raises(computenet.InvalidArgument, match="three decimals"):
        alice.submit(command=["true"], a100_equivalents="1.2345")
    with pytest.raises(computenet.InvalidArgument, match="empty name"):
        alice.submit(command=["true"], models=["A800|"])
    with pytest.raises(computenet.InvalidArgument, match="priority"):
        alice.submit(command=["true"], priority="urgent")
    with pytest.raises(computenet.InvalidArgument, match="argv"):
        alice.submit(command="python train.py")
    with pytest.raises(TypeError):
        alice.submit(command=["true"], gpus=2)
    # Refused by the broker, with its message: a card share of two cards.
    with pytest.raises(computenet.InvalidArgument) as refused:
        alice.submit(command=["true"], gpu_milli=500, cards=2,
                     max_duration_s=60)
    assert refused.value.code is computenet.StatusCode.INVALID_ARGUMENT
    assert refused.value.message
    assert isinstance(refused.value, ValueError)


def test_events_arrive_in_order(net, alice: computenet.Client) -> None:
    # A blocker holds every card, so the job we follow starts queued.
    blocker = alice.submit(command=net.wait_for_flag("blocker"),
                           models=["A800"], cards=4, max_duration_s=120)
    for info in blocker.events(timeout=WAIT):
        if info.state is JobState.RUNNING:
            break  # leaving the loop closes the iterator and its connection
    job = alice.submit(command=net.wait_for_flag("followed"), models=["A800"],
                       cards=1, max_duration_s=120)
    states = []
    for info in job.events(timeout=WAIT):
        assert info.job_id == job.id
        states.append(info.state)
        if info.state is JobState.QUEUED:
            net.flag("blocker").touch()
        elif info.state is JobState.RUNNING:
            net.flag("followed").touch()
    assert states[0] is JobState.QUEUED
    assert states[-1] is JobState.SUCCEEDED
    assert [s for s in states if s is not JobState.PLACED] == [
        JobState.QUEUED, JobState.RUNNING, JobState.SUCCEEDED]
    order = list(JobState)
    assert [order.index(s) for s in states] == sorted(
        set(order.index(s) for s in states))
    assert blocker.wait(timeout=WAIT).succeeded


def test_cancel(net, alice: computenet.Client) -> None:
    job = alice.submit(command=net.wait_for_flag("never"), max_duration_s=120)
    for info in job.events(timeout=WAIT):
        if info.state is JobState.RUNNING:
            break
    job.cancel()
    info = job.wait(timeout=WAIT)
    assert info.state is JobState.CANCELLED
    assert info.cancel_requested
    with pytest.raises(computenet.FailedPrecondition):
        job.cancel()


def test_another_consumers_job_is_not_found(
        net, alice: computenet.Client, bob: computenet.Client) -> None:
    job = alice.submit(command=net.wait_for_flag("private"), max_duration_s=60)
    with pytest.raises(computenet.NotFound) as not_found:
        bob.job(job.id).status()
    assert not_found.value.code is computenet.StatusCode.NOT_FOUND
    with pytest.raises(computenet.NotFound):
        bob.job(job.id).cancel()
    with pytest.raises(computenet.NotFound):
        list(bob.job(job.id).events())
    assert job.id not in {j.job_id for j in bob.jobs()}
    assert not job.status().terminal  # untouched by bob
    net.flag("private").touch()
    assert job.wait(timeout=WAIT).succeeded
    with pytest.raises(computenet.NotFound):
        alice.job("hub-999999").status()


def test_gil_is_released_while_waiting(net, alice: computenet.Client) -> None:
    # The job ends only when another Python thread has counted, in pure
    # Python, to COUNT (a second or so of work) after the main thread went
    # into wait(). Were the GIL held while wait blocks, that thread would get
    # a few milliseconds per blocking step at most: far from enough before
    # the wait's timeout, which would then raise DeadlineExceeded.
    COUNT = 20_000_000
    job = alice.submit(command=net.wait_for_flag("gil"), max_duration_s=120)
    go = threading.Event()
    counted = []

    def count() -> None:
        go.wait()
        n = 0
        while n < COUNT:
            n += 1
        counted.append(n)
        net.flag("gil").touch()

    counter = threading.Thread(target=count)
    counter.start()
    go.set()
    info = job.wait(timeout=60)
    counter.join()
    assert counted == [COUNT]
    assert info.succeeded


def test_threads_share_one_client(alice: computenet.Client) -> None:
    results = {}
    errors = []

    def run(i: int) -> None:
        try:
            job = alice.submit(command=["sh", "-c", f"exit {i % 3}"],
                               max_duration_s=60)
            results[i] = (job.id, job.wait(timeout=WAIT))
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len({job_id for job_id, _ in results.values()}) == 8
    for i, (_, info) in results.items():
        assert info.exit_code == i % 3
        assert info.state is (JobState.SUCCEEDED if i % 3 == 0
                              else JobState.FAILED)


def test_wait_timeout_raises_deadline_exceeded(
        net, alice: computenet.Client) -> None:
    job = alice.submit(command=net.wait_for_flag("late"), max_duration_s=60)
    with pytest.raises(computenet.DeadlineExceeded) as late:
        job.wait(timeout=0.2)
    assert job.id in late.value.message
    assert isinstance(late.value, TimeoutError)
    net.flag("late").touch()
    assert job.wait(timeout=WAIT).succeeded


def test_inputs_go_up_and_the_checked_result_comes_back(
        alice: computenet.Client, tmp_path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "numbers.txt").write_text("3\n4\n")
    job = alice.submit(
        command=["sh", "-c",
                 'awk "{s+=\\$1} END {print s}" data/numbers.txt'
                 ' > "$COMPUTENET_OUTPUT_DIR/sum.txt"'],
        inputs=[data], models=["A800"], max_duration_s=60)
    info = job.wait(timeout=WAIT)
    assert info.state is JobState.SUCCEEDED, info.reason
    fetched = job.fetch(tmp_path / "result")
    assert (tmp_path / "result" / "sum.txt").read_text() == "7\n"
    assert len(fetched["digest"]) == 64 and fetched["size"] > 0
    assert fetched["provider"] == "site-a"
    with pytest.raises(computenet.InvalidArgument):
        alice.submit(command=["true"], inputs=[tmp_path / "missing"],
                     max_duration_s=60)
