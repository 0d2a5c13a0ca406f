"""Long analysis tasks and beat's short tasks go to separate queues, so a worker full of camera
slices never keeps dispatch, sweeps or notifications waiting."""

from __future__ import annotations

from django.conf import settings

from monitor.celery import app

ANALYSIS = ("detection.tasks.analyse_camera", "detection.tasks.analyse_video")
SHORT = (
    "detection.tasks.dispatch_cameras",
    "detection.tasks.sweep_video_jobs",
    "monitor.tasks.relay_notifications",
    "monitor.tasks.apply_retention",
)


def queue_of(task_name: str) -> str:
    route = app.amqp.router.route({}, task_name, args=(), kwargs={})
    return route["queue"].name


def test_analysis_tasks_have_their_own_queue() -> None:
    assert {queue_of(name) for name in ANALYSIS} == {settings.ARGUS_ANALYSIS_QUEUE}


def test_beat_tasks_stay_on_the_default_queue() -> None:
    assert {queue_of(name) for name in SHORT} == {settings.CELERY_TASK_DEFAULT_QUEUE}
    assert settings.ARGUS_ANALYSIS_QUEUE != settings.CELERY_TASK_DEFAULT_QUEUE


def test_every_scheduled_task_is_one_the_router_sends_to_the_short_queue() -> None:
    scheduled = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert scheduled <= set(SHORT)


def test_a_worker_started_without_q_consumes_both_queues() -> None:
    names = {queue.name for queue in app.amqp.queues.values()}
    assert {settings.ARGUS_ANALYSIS_QUEUE, settings.CELERY_TASK_DEFAULT_QUEUE} <= names
