from django.db import migrations, models


class Migration(migrations.Migration):
    """The activity page reads a camera's events of a time window, newest first (dashboard/analytics.py)."""

    dependencies = [
        ("monitor", "0004_channel_camera_health"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="event",
            index=models.Index(fields=["camera", "segment_start"], name="event_camera_time"),
        ),
    ]
