"""The Redis channel layer, with a blocking receive shorter than redis-py's read timeout.

channels_redis blocks 5 s per receive (BZPOPMIN), and redis-py 8 times socket reads out at 5 s by
default: the two raced, the read timed out first, and every open dashboard socket dropped every few
seconds. A 3 s block always answers inside the read timeout, while a read that really hangs (Redis
gone) still times out as before, so a consumer never waits on a dead connection for long."""

from __future__ import annotations

from channels_redis.core import RedisChannelLayer


class ArgusChannelLayer(RedisChannelLayer):
    brpop_timeout = 3
