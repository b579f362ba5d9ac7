"""The Celery broker's transport: kombu's Redis one, made to survive losing Redis.

When Redis goes away while the worker holds an unacknowledged message (a consensus run is
`acks_late`), Celery closes the broken connection. Closing the channel tries to put the
message back on the queue, through a client it builds from the connection's settings,
which the close has already dropped. kombu then raises AttributeError, which Celery does
not take for a connection error, and the worker exits.

Here that client is refused with a connection error instead: Celery ignores it and
reconnects. The message stays in Redis's unacked set, and kombu redelivers it once its
visibility timeout passes; the run itself is done by then, and a second delivery of a
finished run does nothing (areas.pull.run_consensus).
"""

from kombu.transport import redis as kombu_redis
from redis.exceptions import ConnectionError as RedisConnectionError


class Channel(kombu_redis.Channel):
    def _connparams(self, asynchronous: bool = False) -> dict:
        if self.connection.client is None:
            raise RedisConnectionError("the broker connection is closed")
        return super()._connparams(asynchronous=asynchronous)


class Transport(kombu_redis.Transport):
    Channel = Channel
